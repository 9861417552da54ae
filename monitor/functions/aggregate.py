"""Timer trigger: roll scores up into windows and raise alerts (monitor.aggregate does the work).

The schedule is the app setting AGGREGATION_SCHEDULE (NCRONTAB with seconds; the documented default
is `0 */15 * * * *`, every 15 minutes). After the windows, each monitor's judge calibration runs
when it is due (CALIBRATION_PERIOD_HOURS). Nothing is read at import time.
"""

import logging

import azure.functions as func

from monitor.aggregate import run_aggregation
from monitor.calibration.runs import calibrate_due

logger = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.function_name("aggregate_windows")
@bp.timer_trigger(arg_name="timer", schedule="%AGGREGATION_SCHEDULE%", run_on_startup=False, use_monitor=True)
def aggregate_windows(timer: func.TimerRequest) -> None:
    for report in run_aggregation(past_due=timer.past_due):
        logger.info(report.summary())
    for result in calibrate_due():  # judge calibration when due (docs/calibration.md)
        logger.info("calibration of %s: %s", result.monitor, "ran" if result.ran else result.reason)
