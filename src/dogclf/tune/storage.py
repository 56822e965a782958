"""Where a study lives: the tune folder's SQLite file or a shared database, opened with heartbeats."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from dogclf.errors import ConfigError, DogclfError
from dogclf.tune.results import masked_url
from dogclf.tune.workers import HEARTBEAT

if TYPE_CHECKING:
    import optuna


def default_storage(output: Path) -> str:
    """SQLite file in the tune folder."""
    return f"sqlite:///{(output / 'study.db').resolve()}"


def open_storage(url: str, heartbeat: int = HEARTBEAT, attempts: int = 5) -> optuna.storages.RDBStorage:
    """RDB storage with heartbeats: a trial whose worker died is failed and queued again, its reports kept.

    Workers that open a new database at the same moment race to create its tables; the losers see
    "table already exists" or a duplicate schema version and simply open it again.
    """
    import optuna
    from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, ProgrammingError

    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None

    def open_once() -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():  # heartbeats are marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1, inherit_intermediate_values=True)
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine,
                heartbeat_interval=heartbeat,
                grace_period=4 * heartbeat,
                heartbeat_stale_trial_callback=retry,
            )

    for attempt in range(attempts):
        try:
            return open_once()
        except ImportError as exc:  # optuna re-raises the driver's ModuleNotFoundError as an ImportError
            raise _missing_driver(url, exc) from None
        except ArgumentError as exc:
            raise DogclfError(f"--storage {url.split(':', 1)[0]}:...: not a database URL: {exc}") from None
        except (IntegrityError, OperationalError, ProgrammingError) as exc:
            if attempt == attempts - 1:
                reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
                raise DogclfError(f"cannot open --storage {masked_url(url)}: {reason}") from None
            time.sleep(0.05 * (attempt + 1))
    raise DogclfError(f"cannot open --storage {masked_url(url)}")  # attempts < 1


def _missing_driver(url: str, exc: ImportError) -> DogclfError:
    """The one-line error for a storage URL whose database driver is not installed."""
    from dogclf.extras import MissingExtraError

    missing = exc.__cause__ if isinstance(exc.__cause__, ImportError) else exc
    name = missing.name or str(missing)
    backend = url.split(":", 1)[0]
    fix = "pip install 'dogclf[postgres]'" if backend == "postgresql" else f"pip install {name}"
    return MissingExtraError(f"--storage {backend}://... needs the driver {name}, which is not installed: {fix}")


def study_status(output: Path | None, storage: str | None, study_name: str) -> str:
    """`dogclf tune --status`: the study read from its storage (nothing is created or changed)."""
    import optuna
    from sqlalchemy.engine import make_url

    from dogclf.tune.results import format_status

    if storage is None:
        if output is None:
            raise ConfigError("--status needs --output (a tune folder) or --storage (the study's database URL)")
        storage = default_storage(Path(output))
    if storage.startswith("sqlite") and not Path(make_url(storage).database or "").is_file():
        raise DogclfError(f"no study database at {masked_url(storage)}")
    rdb = open_storage(storage)
    try:
        study = optuna.load_study(study_name=study_name, storage=rdb)
    except KeyError:
        names = [s.study_name for s in rdb.get_all_studies()]
        raise DogclfError(f"no study {study_name!r} in {masked_url(storage)}; studies there: {names}") from None
    return format_status(study)
