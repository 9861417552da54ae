"""Generated Model Data Collector files: a model_inputs and a model_outputs JSONL of one hour.

Envelopes have the shape Azure ML's collector writes (see tests/support/mdc.py): CloudEvents fields,
the correlation id, and `data` with one row (question on the input side; answer and context on the
output side). Sizes are those of a RAG chat: about 0.65 KB per input line and 2 KB per output line.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.data import paragraph

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
SOURCE = ("/subscriptions/0/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"
          "/onlineEndpoints/contoso-chat/deployments/blue")
PREFIX = "modelDataCollector/contoso-chat/blue"
FILE = "0" * 32 + "000000.jsonl"


def blob_name(collection: str, when: datetime = T0) -> str:
    return f"{PREFIX}/{collection}/{when:%Y/%m/%d/%H}/{FILE}"


def _envelope(collection: str, correlation: str, when: datetime, row: dict[str, str]) -> bytes:
    env = {"specversion": "1.0", "id": f"{correlation}-{collection}", "source": SOURCE,
           "type": f"azureml.inference.{collection}", "datacontenttype": "application/json",
           "time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "contentrange": "bytes 0-1/2",
           "correlationid": correlation, "xrequestid": correlation, "modelversion": "default",
           "collectdatatype": "pandas.core.frame.DataFrame", "agent": "azureml-ai-monitoring/0.1.0b4",
           "data": [row]}
    return json.dumps(env, separators=(",", ":")).encode() + b"\n"


def generate(inputs: Path, outputs: Path, *, requests: int | None = None, total_bytes: int | None = None,
             seed: int = 11) -> dict[str, int]:
    """Write both files; stop after `requests` pairs or once both files hold `total_bytes` together."""
    rng = random.Random(seed)
    pool = [(paragraph(rng, 20).rstrip(".") + "?", paragraph(rng, 75), paragraph(rng, 170)) for _ in range(512)]
    inputs.parent.mkdir(parents=True, exist_ok=True)
    written = count = 0
    with inputs.open("wb") as fin, outputs.open("wb") as fout:
        while (requests is None or count < requests) and (total_bytes is None or written < total_bytes):
            question, answer, context = pool[count % len(pool)]
            correlation = f"{count:08x}-{rng.getrandbits(64):016x}"
            when = T0 + timedelta(microseconds=count * 1000)
            a = _envelope("model_inputs", correlation, when, {"question": question})
            b = _envelope("model_outputs", correlation, when + timedelta(milliseconds=800),
                          {"answer": answer, "context": context})
            fin.write(a)
            fout.write(b)
            written += len(a) + len(b)
            count += 1
    return {"requests": count, "bytes": written, "input_bytes": inputs.stat().st_size,
            "output_bytes": outputs.stat().st_size}
