"""`python -m monitor smoke --api URL [--key KEY]`: prove a deployed monitor works, end to end.

It plays Model Data Collector and a user against the app (docs/deploy.md, "Smoke test"):

1. **api**: `GET /api/health` answers and the key is accepted;
2. **monitor**: a throw-away monitor `smoke-<id>` (heuristic judge: no model, no cost) on its own prefix;
3. **write**: a small MDC hour as real append blobs, written the way MDC writes them: each file
   created empty (its one Event Grid event), then, `append_interval` seconds apart, appended to
   twice with one line split across the two appends, so the blob trigger sees an (almost) empty
   file and only the tail timer can read the lines; with the caller's identity (the `MDC_STORAGE`
   settings; `DefaultAzureCredential` for a service URI);
4. **ingest**: waits, with a progress line and a timeout, until `status` shows every record;
5. **judge**: every record scored, none in error;
6. **aggregate**: `POST /api/monitors/{name}/aggregate` (the timer's path);
7. **metrics**: the hour's windows hold every record.

Then it deletes the blobs and the monitor it created (also after a failure, unless `--keep`). A
failure names the stage that did not happen and where to look.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from monitor.errors import MonitorError

ENDPOINT = "smoke"
DEPLOYMENT = "blue"
METRICS = ("coherence", "fluency", "groundedness", "relevance", "similarity")
# Where to look, by stage: the functions and settings involved.
WHERE = {
    "ingest": "functions ingest_blob (Event Grid) and tail_blobs (the tail timer, TAIL_SCHEDULE) in Application "
              "Insights; the Event Grid subscription evgs-ingest-mdc (scripts/postdeploy.sh); app settings "
              "MDC_STORAGE__blobServiceUri, MDC_STORAGE__queueServiceUri and MDC_CONTAINER",
    "judge": "functions ingest_blob and evaluate_batch in Application Insights; GET /api/monitors/{name}/records",
    "aggregate": "function http_app_func in Application Insights; app settings MONITOR_STORAGE__tableServiceUri",
}


class SmokeError(MonitorError):
    """A stage of the smoke test did not happen."""

    code = "smoke_failed"
    status = 500

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"smoke test failed at stage {stage!r}: {message}")
        self.stage = stage


@dataclass
class SmokeOptions:
    api: str
    key: str | None = None
    container: str | None = None
    timeout: float = 600.0
    poll: float = 5.0
    requests: int = 6
    append_interval: float = 20.0
    keep: bool = False
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


# --- the HTTP API -------------------------------------------------------------------------------

class Api:
    """The monitor's HTTP API with the function key (header), JSON in and out."""

    def __init__(self, base: str, key: str | None, timeout: float = 60.0) -> None:
        self.base = base.rstrip("/")
        self.key = key
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None, **params: str) -> tuple[int, Any]:
        url = f"{self.base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json"} if data is not None else {}
        if self.key:
            headers["x-functions-key"] = self.key
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _json(exc.read())

    def expect(self, stage: str, method: str, path: str, ok: tuple[int, ...], body: Any = None,
               **params: str) -> Any:
        try:
            status, payload = self.call(method, path, body, **params)
        except (urllib.error.URLError, OSError) as exc:
            raise SmokeError(stage, f"{method} {self.base}{path} did not answer: {exc}") from None
        if status not in ok:
            raise SmokeError(stage, f"{method} {path} answered {status}: {_error_text(payload)}")
        return payload


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")[:300]


def _error_text(payload: Any) -> str:
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return str(payload["error"].get("message"))
    return str(payload)[:300]


# --- the MDC hour -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SmokeData:
    """The blobs of one MDC hour and how they are written: path -> the appends, in order."""

    monitor: str
    hour: datetime
    appends: dict[str, list[bytes]]
    records: int

    @property
    def size(self) -> int:
        return sum(len(part) for parts in self.appends.values() for part in parts)

    @property
    def prefix(self) -> str:
        return f"modelDataCollector/{self.monitor}/{DEPLOYMENT}/"


def smoke_data(monitor: str, now: datetime, requests: int) -> SmokeData:
    """`requests` request/response pairs in the current hour, MDC's layout and envelope."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    instance = secrets.token_hex(16)
    inputs, outputs = [], []
    for i in range(requests):
        moment = max(hour, now - timedelta(seconds=requests - i))
        correlation = f"{monitor}-{i:04d}"
        question = f"Which warranty applies to order {i}?"
        context = "Every order ships with a two-year warranty that covers manufacturing defects."
        inputs.append(_line(monitor, "model_inputs", correlation, moment,
                            {"question": question, "ground_truth": "A two-year warranty."}))
        outputs.append(_line(monitor, "model_outputs", correlation, moment,
                             {"answer": "A two-year warranty covers manufacturing defects.", "context": context}))
    folder = f"{hour:%Y/%m/%d/%H}"
    path = f"modelDataCollector/{monitor}/{DEPLOYMENT}/{{}}/{folder}/{instance}000000.jsonl"
    # Inputs: half the lines, then a line split across two appends, then the rest.
    split = len(inputs) // 2
    cut = len(inputs[split]) // 2
    appends = {
        path.format("model_inputs"): [b"".join(inputs[:split]) + inputs[split][:cut],
                                      inputs[split][cut:] + b"".join(inputs[split + 1:])],
        path.format("model_outputs"): [b"".join(outputs[:split]), b"".join(outputs[split:])],
    }
    return SmokeData(monitor, hour, appends, requests)


def _line(monitor: str, collection: str, correlation: str, moment: datetime, row: dict[str, Any]) -> bytes:
    source = (f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/smoke/providers/"
              f"Microsoft.MachineLearningServices/workspaces/smoke/onlineEndpoints/{monitor}/deployments/{DEPLOYMENT}")
    envelope = {
        "specversion": "1.0", "id": secrets.token_hex(16), "source": source,
        "type": f"azureml.inference.{collection}", "datacontenttype": "application/json",
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "data": [row], "contentrange": "bytes 0-1/2",
        "correlationid": correlation, "xrequestid": correlation, "modelversion": "1",
        "collectdatatype": "pandas.core.frame.DataFrame", "agent": "monitor-smoke",
    }
    return json.dumps(envelope).encode() + b"\n"


def monitor_config(data: SmokeData, container: str) -> dict[str, Any]:
    return {
        "name": data.monitor,
        "source": {"format": "mdc", "container": container, "prefix": data.prefix},
        "columns": {"prompt": "question", "completion": "answer", "context": "context",
                    "ground_truth": "ground_truth"},
        "judge": {"provider": "heuristic"},
        "alerts": {"min_samples": 1},
    }


# --- the run ------------------------------------------------------------------------------------

class Smoke:
    def __init__(self, options: SmokeOptions, out: TextIO) -> None:
        self.options = options
        self.out = out
        self.api = Api(options.api, options.key)
        self.name = f"smoke-{secrets.token_hex(4)}"
        self.data = smoke_data(self.name, options.now(), options.requests)
        self._progress = ""  # the progress line open on a terminal
        self._last_state = ""
        self._last_state_at = 0.0

    def say(self, text: str) -> None:
        if self._progress:
            print(file=self.out)
            self._progress = ""
        print(text, file=self.out, flush=True)

    def run(self) -> dict[str, Any]:
        from monitor.settings import get_settings

        started = time.monotonic()
        container = self.options.container or get_settings().MDC_CONTAINER
        self.check_api()
        with self.created(container) as blobs:
            self.write(blobs)
            status = self.wait_for_ingestion()
            report = self.aggregate()
            windows = self.check_metrics()
        self.say(f"smoke test passed in {time.monotonic() - started:.0f} s")
        return {"monitor": self.name, "status": status, "aggregation": report, "windows": len(windows)}

    def check_api(self) -> None:
        health = self.api.expect("api", "GET", "/api/health", (200,))
        if health != {"status": "ok"}:
            raise SmokeError("api", f"/api/health answered {health!r}: is {self.api.base} the monitor's URL?")
        status, payload = self.api.call("GET", "/api/monitors")
        if status == 401:
            raise SmokeError("api", "the key was refused (401): pass the app's function key with --key "
                                    "(az functionapp keys list -g RG -n APP --query functionKeys.default)")
        if status != 200:
            raise SmokeError("api", f"GET /api/monitors answered {status}: {_error_text(payload)}")
        self.say(f"api       ok: {self.api.base} answers, the key is accepted")

    @contextmanager
    def created(self, container: str) -> Iterator[Any]:
        """The monitor and the container client; both cleaned up afterwards (unless --keep)."""
        from monitor.settings import get_settings
        from monitor.storage.clients import blob_service

        path = f"/api/monitors/{self.name}"
        self.api.expect("monitor", "PUT", path, (200, 201), monitor_config(self.data, container))
        self.say(f"monitor   ok: {self.name} (heuristic judge) on {container}/{self.data.prefix}")
        blobs = blob_service(get_settings().mdc_storage()).get_container_client(container)
        try:
            yield blobs
        finally:
            if self.options.keep:
                self.say(f"kept the monitor {self.name} and its blobs (--keep)")
            else:
                self.clean_up(blobs, path)

    def clean_up(self, blobs: Any, path: str) -> None:
        for name in self.data.appends:
            try:
                blobs.delete_blob(name)
            except Exception as exc:  # cleaning up must not hide the result
                self.say(f"cleanup: could not delete {name}: {exc}")
        status, payload = self.api.call("DELETE", path)
        if status not in (204, 404):
            self.say(f"cleanup: DELETE {path} answered {status}: {_error_text(payload)}")
        else:
            self.say(f"cleanup   ok: deleted the monitor {self.name} and its {len(self.data.appends)} blobs")

    def write(self, blobs: Any) -> None:
        from azure.core.exceptions import HttpResponseError

        account = blobs.url.rsplit("/", 1)[0]
        try:
            for name in self.data.appends:
                blobs.get_blob_client(name).create_append_blob()
            for step in range(max(len(parts) for parts in self.data.appends.values())):
                time.sleep(self.options.append_interval)
                for name, parts in self.data.appends.items():
                    if step < len(parts):
                        blobs.get_blob_client(name).append_block(parts[step])
        except HttpResponseError as exc:
            raise SmokeError("write", f"could not write append blobs to {blobs.url}: {exc.reason or exc} "
                                      f"(status {exc.status_code}). Your identity needs Storage Blob Data "
                                      f"Contributor on {account} (docs/deploy.md, 'Smoke test'); the account and "
                                      f"container come from MDC_STORAGE and MDC_CONTAINER / --container") from None
        self.say(f"write     ok: {len(self.data.appends)} append blobs, {self.data.records} requests, "
                 f"{self.data.size} bytes in {sum(len(p) for p in self.data.appends.values())} appends")

    def wait_for_ingestion(self) -> dict[str, Any]:
        expected = self.data.records * len(METRICS)
        deadline = time.monotonic() + self.options.timeout
        status: dict[str, Any] = {}
        while True:
            status = self.api.expect("ingest", "GET", f"/api/monitors/{self.name}/status", (200,))
            scores = status.get("scores", {})
            judged = sum(int(v) for v in scores.values())
            self.progress(status, judged, expected, deadline)
            if int(scores.get("error", 0)):
                raise SmokeError("judge", f"{scores['error']} of {expected} scores are errors. Look at: "
                                          f"{WHERE['judge'].format(name=self.name)}")
            if status.get("records") == self.data.records and judged >= expected:
                break
            if time.monotonic() >= deadline:
                raise SmokeError(*self.diagnose(status, judged, expected))
            time.sleep(self.options.poll)
        self.say(f"ingest    ok: {status['records']} records, {judged} scores")
        return status

    def progress(self, status: dict[str, Any], judged: int, expected: int, deadline: float) -> None:
        """One line redrawn in place on a terminal; elsewhere a line when it changes or every 30 s."""
        now = time.monotonic()
        state = (f"waiting: blobs {status.get('blobs_processed', 0)}, open {status.get('open_blobs', 0)}, "
                 f"records {status.get('records', 0)}/{self.data.records}, scores {judged}/{expected}, "
                 f"quarantined {status.get('quarantined', 0)}")
        line = f"{state} ({max(0.0, deadline - now):.0f} s left)"
        if self.out.isatty():
            print(f"\r{line}", end="", file=self.out, flush=True)
            self._progress = line
        elif state != self._last_state or now - self._last_state_at >= 30:
            print(line, file=self.out, flush=True)
            self._last_state, self._last_state_at = state, now

    def diagnose(self, status: dict[str, Any], judged: int, expected: int) -> tuple[str, str]:
        seconds = f"{self.options.timeout:.0f} s"
        where = WHERE["ingest"]
        if status.get("quarantined"):
            return "ingest", (f"{status['quarantined']} lines were quarantined "
                              f"({status.get('quarantine_reasons')}): GET /api/monitors/{self.name}/quarantine")
        if not (status.get("blobs_processed") or status.get("open_blobs") or status.get("lines")):
            return "ingest", (f"nothing under {self.data.prefix} was read in {seconds}: no Event Grid event was "
                              f"delivered and no sweep found the blobs. Look at: {where}")
        if status.get("records", 0) < self.data.records:
            return "ingest", (f"the blobs were opened but only {status.get('records', 0)} of {self.data.records} "
                              f"records were joined in {seconds} ({status.get('bytes_read', 0)} of "
                              f"{self.data.size} bytes read: lines appended after the creation event are read by "
                              f"tail_blobs; unmatched halves: {status.get('unmatched', 0)}). Look at: {where}")
        return "judge", (f"only {judged} of {expected} scores in {seconds}. Look at: "
                         f"{WHERE['judge'].format(name=self.name)}")

    def aggregate(self) -> dict[str, Any]:
        report = self.api.expect("aggregate", "POST", f"/api/monitors/{self.name}/aggregate", (200,))
        if report.get("error"):
            raise SmokeError("aggregate", f"{report['error']}. Look at: {WHERE['aggregate']}")
        self.say(f"aggregate ok: {len(report.get('windows', []))} windows, {report.get('rows_written')} rows written")
        return dict(report)

    def check_metrics(self) -> list[dict[str, Any]]:
        start = self.data.hour.strftime("%Y-%m-%dT%H:%M:%SZ")
        end = (self.data.hour + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = self.api.expect("metrics", "GET", f"/api/monitors/{self.name}/metrics", (200,),
                               start=start, end=end, segment="all")
        windows = [w for w in body.get("windows", []) if w.get("window_start") == start]
        missing = [m for m in METRICS if not any(w.get("metric") == m and w.get("row_count") == self.data.records
                                                 for w in windows)]
        if missing:
            raise SmokeError("metrics", f"the window {start} lacks {missing} with {self.data.records} records "
                                        f"after aggregation (windows: {windows}). Look at: {WHERE['aggregate']}")
        self.say(f"metrics   ok: window {start}, {len(windows)} metrics with {self.data.records} records each")
        return windows


def run_smoke(options: SmokeOptions, out: TextIO = sys.stdout) -> dict[str, Any]:
    """Run every stage; raises SmokeError naming the first that did not happen."""
    return Smoke(options, out).run()
