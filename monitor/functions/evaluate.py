"""Queue trigger: judge one batch of records (the fan-out path for large blobs)."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.queue_trigger(arg_name="message", queue_name="%EVALUATION_QUEUE%", connection="MONITOR_STORAGE")
def evaluate_batch(message: func.QueueMessage) -> None:
    from monitor.services import get_services

    get_services().handle_batch_message(message.get_body(), message.dequeue_count or 1)
