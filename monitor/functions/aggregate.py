"""Timer trigger: roll scores up into windows and raise alerts (monitor.aggregate does the work).

The schedule is the app setting AGGREGATION_SCHEDULE (NCRONTAB with seconds; the documented default
is `0 */15 * * * *`, every 15 minutes). Nothing is read at import time.
"""

import logging

import azure.functions as func

from monitor.aggregate import run_aggregation

logger = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.function_name("aggregate_windows")
@bp.timer_trigger(arg_name="timer", schedule="%AGGREGATION_SCHEDULE%", run_on_startup=False, use_monitor=True)
def aggregate_windows(timer: func.TimerRequest) -> None:
    for report in run_aggregation(past_due=timer.past_due):
        logger.info(report.summary())
