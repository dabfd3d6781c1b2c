"""State that survives a crash: a patch for MiniStack 1.5.33.

MiniStack's persistence (PERSIST_STATE) writes the services' state when it shuts
down cleanly, so a crash, an OOM kill or `docker kill` loses everything since
it started. This module writes each service's state whenever it changed, every
few seconds, with MiniStack's own writer (atomic per file). S3 object bodies
are already written when they are put (S3_PERSIST).

A task that ran when the emulator went away cannot be adopted again (MiniStack
removes the containers it started when it boots), so it comes back STOPPED with
a stoppedReason that says what happened, and a caller waiting on it (an
EcsRunTaskOperator) fails at once instead of waiting for logs that never come.
"""

import hashlib
import json
import logging
import os
import sys
import threading
import time

logger = logging.getLogger("durability")

SAVE_EVERY_SECONDS = float(os.environ.get("STATE_SAVE_SECONDS", "3"))
RESTART_REASON = ("The AWS emulator restarted while this task ran; its containers were stopped "
                  "(the sandbox cannot adopt them again). Run the task again.")
RESTART_STOP_CODE = "TerminationNotice"
# CloudWatch's state holds Container Insights' per-second metrics (the metrics service puts them):
# megabytes after a few fan-outs. Copying and serialising all of it every few seconds to learn whether
# it changed cost the emulator more CPU than a fan-out's ECS calls, so it is written at most this
# often; a crash loses at most that much of the metrics (the metrics service keeps its own).
SLOW_SAVE_SECONDS = {"cloudwatch": float(os.environ.get("METRICS_STATE_SAVE_SECONDS", "30"))}
_CLOUDWATCH_SMALL = ("_alarms", "_composite_alarms", "_composite_triggers", "_alarm_history", "_dashboards",
                     "_resource_tags")

_original = {}
_written = {}        # service -> digest of the state last written
_written_at = {}     # service -> time.monotonic() it was last written
_saver = None


def stop_interrupted(tasks, now):
    """Mark every task of a saved state that had not stopped as stopped by the restart."""
    for task in getattr(tasks, "_data", tasks).values():
        if not isinstance(task, dict) or task.get("lastStatus") == "STOPPED":
            continue
        task.update(desiredStatus="STOPPED", stoppedReason=RESTART_REASON, stopCode=RESTART_STOP_CODE,
                    stoppingAt=task.get("stoppingAt") or now, stoppedAt=now,
                    executionStoppedAt=task.get("executionStoppedAt") or now)
        task.pop("_fidelity_stopping", None)
        for container in task.get("containers", []):
            if container.get("lastStatus") != "STOPPED":
                container.update(lastStatus="STOPPED", exitCode=None, reason=RESTART_REASON)


def _restore_ecs_state(data):
    from ministack.services import ecs

    if data and data.get("tasks") is not None:
        stop_interrupted(data["tasks"], ecs._iso())
    return _original["ecs._restore_state"](data)


def _ecr_fingerprint(module):
    images = getattr(module, "_images", None)
    items = images.all_items() if hasattr(images, "all_items") else []
    return hashlib.sha256(repr(sorted((str(k), json.dumps(v, sort_keys=True, default=str))
                                      for k, v in items)).encode()).hexdigest()


def _cloudwatch_fingerprint(module):
    """Metric points are appended and evicted, never edited: their count says whether they changed."""
    metrics = getattr(getattr(module, "_metrics", None), "_data", {})
    small = {name: getattr(getattr(module, name, None), "_data", None) for name in _CLOUDWATCH_SMALL}
    return hashlib.sha256(repr((len(metrics), sum(len(points) for points in metrics.values()),
                                json.dumps(small, sort_keys=True, default=str))).encode()).hexdigest()


# States fingerprinted by what they are, not serialised to find out whether they changed.
_FINGERPRINTS = {"ecr": _ecr_fingerprint, "cloudwatch": _cloudwatch_fingerprint}


def save_changed(services, save_state, encode, now=None):
    """Write each service's state whose digest changed since it was last written (a service of
    SLOW_SAVE_SECONDS not sooner than that after its last write). Returns the names."""
    now = time.monotonic() if now is None else now
    saved = []
    for name, get_state in services.items():
        try:
            if now - _written_at.get(name, float("-inf")) < SLOW_SAVE_SECONDS.get(name, 0):
                continue
            if name in _FINGERPRINTS:
                digest = _FINGERPRINTS[name](sys.modules.get(f"ministack.services.{name}"))
                if _written.get(name) == digest:
                    continue
                state = get_state()
            else:
                state = get_state()
                if state is None:
                    continue
                digest = hashlib.sha256(json.dumps(state, default=encode, sort_keys=True).encode()).hexdigest()
                if _written.get(name) == digest:
                    continue
            save_state(name, state)
            _written[name], _written_at[name] = digest, now
            saved.append(name)
        except Exception as exc:   # one service's failure must not stop the others being saved
            logger.warning("durability: saving %s failed: %s", name, exc)
    return saved


_save_lock = threading.Lock()  # the saver and save_now never write one service at once


def _save(names=None):
    from ministack import app
    from ministack.core import persistence

    services = app._build_persistence_save_dict()
    if names is not None:
        services = {k: v for k, v in services.items() if k in names}
    with _save_lock:
        return save_changed(services, persistence.save_state, persistence._json_default)


def _save_loop():
    while True:
        time.sleep(SAVE_EVERY_SECONDS)
        try:
            _save()
        except Exception as exc:
            logger.warning("durability: periodic save failed: %s", exc)


def _register_session(access_key, session):
    """STS session credentials are written before the caller gets them: on AWS issued credentials
    never vanish, and a client holding ones issued in the seconds before a crash (a deferred
    operator's trigger) would otherwise be refused after it ("The security token included in the
    request is invalid")."""
    _original["sts.register_session"](access_key, session)
    if _saver is not None:  # not before the saved state is back: it would be written over
        try:
            _save({"sts"})
        except Exception as exc:
            logger.warning("durability: saving sts failed: %s", exc)


def _load_persisted_state():
    """MiniStack's load at boot, then the saver: it must never write before the saved state is back."""
    global _saver
    _original["app._load_persisted_state"]()
    if _saver is None:
        _saver = threading.Thread(target=_save_loop, name="sandbox-state-saver", daemon=True)
        _saver.start()
        logger.info("durability: state is saved every %.0fs while it changes", SAVE_EVERY_SECONDS)


def apply():
    """Install the replacements (idempotent)."""
    from ministack import app
    from ministack.core.persistence import PERSIST_STATE
    from ministack.services import ecs, sts

    if _original or not PERSIST_STATE:
        return
    _original["ecs._restore_state"] = ecs._restore_state
    ecs._restore_state = _restore_ecs_state
    if SAVE_EVERY_SECONDS <= 0:  # AWS_STATE_SAVE_SECONDS=0: written at a clean stop only, as MiniStack does
        logger.info("durability: state is written only when the emulator stops (STATE_SAVE_SECONDS=0)")
        return
    _original["app._load_persisted_state"] = app._load_persisted_state
    app._load_persisted_state = _load_persisted_state
    _original["sts.register_session"] = sts.register_session
    sts.register_session = _register_session
