"""What Redis knows about a source: its RQ queue, failed jobs, workers, and the enabled flag."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from rq import Queue, Worker
from rq.defaults import DEFAULT_WORKER_TTL
from rq.registry import FailedJobRegistry
from zakaz_common.locks import KEY_PREFIX

#: A worker whose last heartbeat is older than this is dead: RQ lets a worker key live
#: `worker_ttl + 60` s after its last heartbeat, and an idle worker beats every `worker_ttl`.
WORKER_HEARTBEAT_MAX_AGE_SECONDS = DEFAULT_WORKER_TTL + 60


def enabled_key(source: str) -> str:
    """The Redis key that overrides a source's `enabled_by_default` ("1" or "0")."""
    return f"{KEY_PREFIX}enabled:{source}"


@dataclass(frozen=True)
class QueueState:
    """A source's RQ queue as seen at one moment."""

    depth: int
    failed_jobs: int
    workers: int
    live_workers: int

    @property
    def worker_alive(self) -> bool:
        """Whether at least one worker on the queue has a fresh heartbeat."""
        return self.live_workers > 0

    def to_dict(self) -> dict[str, int | bool]:
        """JSON-simple form."""
        return {
            "depth": self.depth,
            "failed_jobs": self.failed_jobs,
            "workers": self.workers,
            "worker_alive": self.worker_alive,
        }


def queue_state(conn: redis.Redis, source: str, now: float) -> QueueState:
    """Depth, failed-job count and workers of the source's queue (queue name = source name)."""
    queue = Queue(source, connection=conn)
    workers = Worker.all(queue=queue)
    live = sum(
        1
        for w in workers
        if w.last_heartbeat is not None
        and now - w.last_heartbeat.timestamp() <= WORKER_HEARTBEAT_MAX_AGE_SECONDS
    )
    return QueueState(
        depth=queue.count,
        failed_jobs=FailedJobRegistry(queue=queue).count,
        workers=len(workers),
        live_workers=live,
    )
