"""A custom metric's prompt resolves only inside a prompts folder, as a bounded regular file; errors
name the prompt (and, through the API, the metric), never a path of the server."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from monitor.judge.prompts import PROMPTS_DIR, PromptError, clear_prompt_cache, load_prompt

GOOD = (PROMPTS_DIR / "examples" / "politeness.prompt.toml").read_text(encoding="utf-8")


def refused(reference: str, message: str) -> str:
    started = time.monotonic()
    with pytest.raises(PromptError, match=message) as caught:
        load_prompt(reference)
    assert time.monotonic() - started < 2
    text = caught.value.message
    for secret_path in ("/etc", "/dev/", str(PROMPTS_DIR), "/tmp/", "/root"):
        assert secret_path not in text.replace(reference, ""), text
    return text


@pytest.mark.parametrize("reference", ["/etc/shadow", "/etc/passwd", "/dev/zero", "/dev/stdin", "/proc/self/environ",
                                       "../../../../etc/shadow", "examples/../../../etc/shadow",
                                       "C:\\Windows\\win.ini", "..", "./coherence", "examples//politeness",
                                       "examples/", "~root/x", "coherence\x00", "COHERENCE", "/tmp/x.prompt.toml",
                                       "x" * 300])
def test_paths_and_odd_names_are_not_prompt_names(reference: str) -> None:
    refused(reference, "not a prompt name")


def test_a_symlink_out_of_the_prompts_folder_is_refused(prompt_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.prompt.toml"
    outside.write_text(GOOD, encoding="utf-8")
    (prompt_dir / "escape.prompt.toml").symlink_to(outside)
    (prompt_dir / "shadow.prompt.toml").symlink_to("/etc/shadow")
    (prompt_dir / "zero.prompt.toml").symlink_to("/dev/zero")
    (prompt_dir / "sub").symlink_to(tmp_path)
    for name in ("escape", "shadow", "zero", "sub/outside"):
        refused(name, "outside the prompts folder")


def test_a_symlink_inside_the_prompts_folder_is_followed(prompt_dir: Path) -> None:
    (prompt_dir / "real.prompt.toml").write_text(GOOD, encoding="utf-8")
    (prompt_dir / "alias.prompt.toml").symlink_to(prompt_dir / "real.prompt.toml")
    assert load_prompt("alias").name == "politeness"


def test_a_fifo_is_refused_without_blocking(prompt_dir: Path) -> None:
    os.mkfifo(prompt_dir / "pipe.prompt.toml")
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(refused("pipe", "not a regular file")), daemon=True)
    thread.start()
    thread.join(5)
    assert outcome, "loading a FIFO blocked"


def test_a_directory_is_refused(prompt_dir: Path) -> None:
    (prompt_dir / "folder.prompt.toml").mkdir()
    refused("folder", "not a regular file")


def test_the_size_is_capped_before_reading(prompt_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.settings import reset_settings

    (prompt_dir / "big.prompt.toml").write_text(GOOD + "#" * 70_000, encoding="utf-8")
    refused("big", "at most 65536")
    monkeypatch.setenv("MAX_PROMPT_BYTES", "1000000")
    reset_settings()
    clear_prompt_cache()
    assert load_prompt("big").name == "politeness"
    reset_settings()


def test_a_sparse_huge_file_costs_nothing(prompt_dir: Path) -> None:
    with open(prompt_dir / "sparse.prompt.toml", "wb") as handle:
        handle.truncate(10 * 1024**3)  # 10 GiB of holes: refused by its size, never read
    refused("sparse", "bytes; a prompt file has at most")


def test_binary_and_broken_files_name_the_prompt_only(prompt_dir: Path) -> None:
    (prompt_dir / "binary.prompt.toml").write_bytes(b"\xff\xfe\x00garbage")
    assert "binary.prompt.toml" in refused("binary", "not UTF-8")
    (prompt_dir / "broken.prompt.toml").write_text("name = = 1", encoding="utf-8")
    assert "broken.prompt.toml" in refused("broken", "not valid TOML")


def test_missing_prompts_do_not_reveal_where_the_server_looked(prompt_dir: Path) -> None:
    text = refused("no_such_prompt", "not found")
    assert "no_such_prompt" in text
