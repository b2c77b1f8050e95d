"""``digest schedule``: run the pipeline from APScheduler on a cron expression, until SIGTERM."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from digest.config import Config

log = logging.getLogger(__name__)


def trigger(config: Config):
    """The CronTrigger of ``schedule.cron`` in ``schedule.timezone``."""
    from apscheduler.triggers.cron import CronTrigger

    from digest.errors import ConfigError

    try:
        return CronTrigger.from_crontab(config["schedule.cron"], timezone=config["schedule.timezone"])
    except (ValueError, LookupError) as exc:
        raise ConfigError(f"schedule.cron / schedule.timezone: {exc}") from None


def serve_forever(config: Config, job: Callable[[], None]) -> None:
    """Block, running ``job`` on the schedule: missed runs coalesced, never two at once.

    SIGTERM and SIGINT stop the scheduler cleanly, letting a running job finish. The
    job itself takes the data directory's run lock, so cron and the daemon never overlap.
    """
    from apscheduler.schedulers.blocking import BlockingScheduler

    cron = trigger(config)
    scheduler = BlockingScheduler(timezone=config["schedule.timezone"])
    scheduler.add_job(
        job, cron, id="digest-run", coalesce=True, max_instances=1, misfire_grace_time=6 * 3600, replace_existing=True
    )

    def stop(signum: int, _frame: object) -> None:
        log.warning("received %s; stopping after the current run", signal.Signals(signum).name)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    now = datetime.now(ZoneInfo(config["schedule.timezone"]))
    log.warning("digest schedule: next run at %s", cron.get_next_fire_time(None, now))
    scheduler.start()
