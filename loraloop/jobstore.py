"""The database job store, opened without starting a scheduler: to list jobs, or to add a
one-off job that whichever running scheduler wakes next will run."""

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine


def open_job_store(db: Engine) -> tuple[SQLAlchemyJobStore, BackgroundScheduler]:
    """The store (its table created if absent) and the idle scheduler its jobs belong to."""
    store = SQLAlchemyJobStore(engine=db)
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_jobstore(store)
    store.start(scheduler, "default")
    return store, scheduler
