"""Judge prompts: validated TOML files rendered by a logic-less, single-pass template engine.

A prompt is data, not code (STYLE.md 6-7): a file under ``prompts/`` declares its name, version,
inputs, model parameters, a system message (the rubric, never any judged text), a user message with
``{{input}}`` placeholders inside tagged blocks, and one instruction per mode (``score``: the digit
only; ``explain``: a JSON object with score and reason). Everything is checked when the file is
loaded, so a broken prompt fails the configuration, not the thousandth judge call.

Rendering substitutes each placeholder once (``re.sub`` over the template): a value that itself
contains ``{{context}}`` or braces is inserted verbatim and never expanded again. Values that imitate
the template's own delimiters (``</answer>``) are neutralised (``&lt;/answer>``) so judged text can
never close its block and pose as instructions.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Any, Literal

from monitor.errors import UserError

Mode = Literal["score", "explain"]
MODES: tuple[Mode, ...] = ("score", "explain")

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"
SUFFIX = ".prompt.toml"

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_TAG = re.compile(r"</?\s*([A-Za-z_][A-Za-z0-9_-]*)\s*>")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BARE_NAME = re.compile(r"[a-z0-9_][a-z0-9_/-]*")
MAX_REFERENCE_CHARS = 200

_TOP_KEYS = {"name", "version", "description", "inputs", "parameters", "template", "modes"}
# Model parameters a prompt may set; score mode always adds max_tokens=1 and the logprob options.
_PARAMETERS: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.0, 1.0),
    "seed": (int, 0, 2**31 - 1),
}
DEFAULT_EXPLAIN_TOKENS = 200


class PromptError(UserError):
    """A prompt file is missing or invalid; the message names the file and what to fix."""

    code = "prompt_error"
    status = 422


@dataclass(frozen=True)
class ModeSpec:
    instruction: str
    max_tokens: int


@dataclass(frozen=True)
class Prompt:
    """A loaded, validated prompt. Render it with :meth:`render`."""

    name: str
    version: str
    description: str
    inputs: tuple[str, ...]
    parameters: Mapping[str, float | int]
    system: str
    user: str
    modes: Mapping[str, ModeSpec]
    path: str
    digest: str
    # Tag names used as delimiters in the user template; look-alikes in values are neutralised.
    tags: frozenset[str] = field(default=frozenset())

    def render(self, values: Mapping[str, str | None], mode: Mode = "score") -> list[dict[str, str]]:
        """The chat messages for one record: system (rubric) and user (data blocks + instruction).

        `values` must hold every declared input (None renders as an empty block).
        """
        missing = [name for name in self.inputs if name not in values]
        if missing:
            raise PromptError(f"prompt {self.path}: no value for input(s) {missing}")
        spec = self.modes[mode]
        neutralise = _neutraliser(self.tags)

        def substitute(match: re.Match[str]) -> str:
            return str(neutralise(values[match.group(1)] or ""))

        body = _PLACEHOLDER.sub(substitute, self.user)
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": f"{body}\n\n{spec.instruction}"},
        ]

    def max_tokens(self, mode: Mode) -> int:
        return self.modes[mode].max_tokens


@functools.lru_cache(maxsize=64)
def _neutraliser(tags: frozenset[str]) -> Any:
    """A function that defuses delimiter look-alikes (`</answer>`, `< answer >`) in a value."""
    if not tags:
        return lambda text: text
    names = "|".join(re.escape(t) for t in sorted(tags, key=len, reverse=True))
    pattern = re.compile(rf"<(?=\s*/?\s*(?:{names})(?![A-Za-z0-9_-]))", re.IGNORECASE)
    return lambda text: pattern.sub("&lt;", text)


def check_prompt_reference(reference: str) -> str:
    """A prompt reference as a config may write it: a relative name inside a prompts folder
    (`examples/politeness`, optionally ending in `.prompt.toml`). Never an absolute path, `..`, a
    backslash or a hidden segment. Returns the bare name; raises PromptError."""
    bare = reference.removesuffix(SUFFIX)
    if len(reference) > MAX_REFERENCE_CHARS or not _BARE_NAME.fullmatch(bare) or ".." in bare.split("/") \
            or "//" in bare or bare.endswith("/"):
        raise PromptError(
            f"prompt {reference[:80]!r} is not a prompt name: write the name of a file in the prompts folder "
            f"without its {SUFFIX} suffix (lowercase letters, digits, '_', '-', '/' between folders; "
            f"at most {MAX_REFERENCE_CHARS} characters), e.g. 'examples/politeness'; paths are not accepted"
        )
    return bare


def prompt_roots() -> tuple[Path, ...]:
    """Folders prompts resolve in: the shipped prompts/ and, when set, CUSTOM_PROMPTS_DIR."""
    from monitor.settings import get_settings

    extra = get_settings().CUSTOM_PROMPTS_DIR
    return (PROMPTS_DIR, Path(extra)) if extra else (PROMPTS_DIR,)


def resolve_prompt_path(reference: str) -> Path:
    """The real path of a prompt inside one of the prompt roots (symlinks resolved and required to
    stay inside that root). Raises PromptError naming the reference, never a server path."""
    bare = check_prompt_reference(reference)
    for root in prompt_roots():
        try:
            real_root = root.resolve(strict=True)
            candidate = (real_root / f"{bare}{SUFFIX}").resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if not candidate.is_relative_to(real_root):
            raise PromptError(f"prompt {reference!r} leads outside the prompts folder (a symbolic link): refused")
        return candidate
    raise PromptError(f"prompt {reference!r} not found: put {bare}{SUFFIX} in the prompts folder "
                      "(or in CUSTOM_PROMPTS_DIR) and name it without the suffix")


def load_prompt(reference: str) -> Prompt:
    """Load and validate a prompt (cached per file and modification time). Raises PromptError.

    Only a regular file of at most MAX_PROMPT_BYTES inside a prompt root is read; the size is checked
    before reading and the read is bounded, so a device, a FIFO or a growing file cannot hold it."""
    path = resolve_prompt_path(reference)
    display = f"{check_prompt_reference(reference)}{SUFFIX}"
    stat = _checked_stat(path, display)
    return _load(str(path), display, stat.st_mtime_ns, stat.st_size)


def _max_bytes() -> int:
    from monitor.settings import get_settings

    return get_settings().MAX_PROMPT_BYTES


def _checked_stat(path: Path, display: str) -> os.stat_result:
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise PromptError(f"prompt {display} cannot be read ({exc.strerror})") from None
    _check_file(stat, display)
    return stat


def _check_file(stat: os.stat_result, display: str) -> None:
    if not S_ISREG(stat.st_mode):
        raise PromptError(f"prompt {display} is not a regular file: refused")
    if stat.st_size > _max_bytes():
        raise PromptError(f"prompt {display} has {stat.st_size} bytes; a prompt file has at most "
                          f"{_max_bytes()} (MAX_PROMPT_BYTES)")


def read_bounded(path: str, display: str) -> bytes:
    """The file's bytes: opened without following a final symlink and without blocking (a FIFO
    swapped in after the check), re-checked on the open descriptor, read up to the cap."""
    limit = _max_bytes()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise PromptError(f"prompt {display} cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        _check_file(os.fstat(fd), display)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise PromptError(f"prompt {display} grew beyond {limit} bytes while being read")
    return data


def clear_prompt_cache() -> None:
    _load.cache_clear()


@functools.lru_cache(maxsize=128)
def _load(path: str, display: str, _mtime_ns: int, _size: int) -> Prompt:
    raw = read_bounded(path, display)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PromptError(f"prompt file {display} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PromptError(f"prompt file {display} is not valid TOML: {exc}") from None
    return _build(display, data, hashlib.sha256(raw).hexdigest()[:12])


def _build(path: str, data: dict[str, Any], digest: str) -> Prompt:
    check = _Checker(path)
    unknown = sorted(set(data) - _TOP_KEYS)
    check.that(not unknown, f"unknown key(s) {unknown}; allowed: {sorted(_TOP_KEYS)}")
    name = check.text(data, "name")
    version = check.text(data, "version")
    inputs = _inputs(check, data)
    template = check.table(data, "template")
    check.that(set(template) <= {"system", "user"}, "[template] holds only 'system' and 'user'")
    system = check.text(template, "system", where="template.system").strip()
    user = check.text(template, "user", where="template.user").strip()
    modes = _modes(check, data)
    _placeholders(check, inputs, system, user, modes)
    return Prompt(
        name=name, version=version, description=str(data.get("description", "")), inputs=inputs,
        parameters=_parameters(check, data), system=system, user=user, modes=modes, path=path,
        digest=digest, tags=frozenset(_TAG.findall(user)),
    )


class _Checker:
    """Raises PromptError with the file name and the offending key."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, message: str) -> PromptError:
        return PromptError(f"prompt file {self.path}: {message}")

    def that(self, condition: bool, message: str) -> None:
        if not condition:
            raise self.fail(message)

    def text(self, data: Mapping[str, Any], key: str, *, where: str | None = None) -> str:
        value = data.get(key)
        self.that(isinstance(value, str) and bool(value.strip()), f"'{where or key}' must be a non-empty string")
        return str(value)

    def table(self, data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = data.get(key)
        self.that(isinstance(value, dict), f"missing table [{key}]")
        assert isinstance(value, dict)
        return value


def _inputs(check: _Checker, data: Mapping[str, Any]) -> tuple[str, ...]:
    inputs = data.get("inputs")
    check.that(inputs is not None, "missing 'inputs': declare the record columns the template uses, "
                                   'e.g. inputs = ["prompt", "completion"]')
    check.that(isinstance(inputs, list) and bool(inputs) and all(isinstance(i, str) for i in inputs),
               "'inputs' must be a non-empty list of column names")
    assert isinstance(inputs, list)
    bad = [i for i in inputs if not _IDENTIFIER.match(i)]
    check.that(not bad, f"input names must be identifiers: {bad}")
    check.that(len(set(inputs)) == len(inputs), "'inputs' lists a name twice")
    return tuple(inputs)


def _parameters(check: _Checker, data: Mapping[str, Any]) -> dict[str, float | int]:
    params = data.get("parameters", {})
    check.that(isinstance(params, dict), "[parameters] must be a table")
    out: dict[str, float | int] = {"temperature": 0.0}
    for key, value in params.items():
        check.that(key in _PARAMETERS, f"unknown parameter {key!r}; allowed: {sorted(_PARAMETERS)} "
                                       "(max_tokens is set per mode)")
        kind, low, high = _PARAMETERS[key]
        ok_type = isinstance(value, int | float) and not isinstance(value, bool)
        if kind is int:
            ok_type = ok_type and isinstance(value, int)
        check.that(ok_type and low <= value <= high, f"parameter {key} must be a number in [{low}, {high}]")
        out[key] = kind(value)
    return out


def _modes(check: _Checker, data: Mapping[str, Any]) -> dict[str, ModeSpec]:
    modes = check.table(data, "modes")
    out: dict[str, ModeSpec] = {}
    for mode in MODES:
        spec = modes.get(mode)
        check.that(isinstance(spec, dict), f"missing table [modes.{mode}]")
        assert isinstance(spec, dict)
        check.that(set(spec) <= {"instruction", "max_tokens"},
                   f"[modes.{mode}] has unknown key(s) {sorted(set(spec) - {'instruction', 'max_tokens'})}")
        instruction = check.text(spec, "instruction", where=f"modes.{mode}.instruction").strip()
        default = 1 if mode == "score" else DEFAULT_EXPLAIN_TOKENS
        max_tokens = spec.get("max_tokens", default)
        if mode == "score":
            check.that(max_tokens == 1, "modes.score.max_tokens must be 1: score mode reads one token")
        check.that(isinstance(max_tokens, int) and 1 <= max_tokens <= 4096,
                   f"modes.{mode}.max_tokens must be an integer in [1, 4096]")
        out[mode] = ModeSpec(instruction=instruction, max_tokens=int(max_tokens))
    return out


def _placeholders(check: _Checker, inputs: tuple[str, ...], system: str, user: str,
                  modes: Mapping[str, ModeSpec]) -> None:
    """Placeholders live in template.user only, each declared, each declared input used."""
    for where, text in [("template.system", system)] + [(f"modes.{m}.instruction", s.instruction)
                                                         for m, s in modes.items()]:
        found = _PLACEHOLDER.findall(text)
        check.that(not found, f"{where} uses {found}: judged text belongs in template.user only, "
                              "inside tagged blocks")
    used = _PLACEHOLDER.findall(user)
    undeclared = sorted(set(used) - set(inputs))
    check.that(not undeclared, f"template.user uses input(s) {undeclared} not declared in 'inputs'")
    unused = sorted(set(inputs) - set(used))
    check.that(not unused, f"input(s) {unused} are declared but template.user never uses them")
    stray = _PLACEHOLDER.sub("", user)
    check.that("{{" not in stray and "}}" not in stray,
               "template.user has a malformed placeholder: write {{name}} with an identifier inside")
