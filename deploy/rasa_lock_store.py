"""A Redis lock store for several rasa replicas whose ticket operations are atomic.

Rasa 3.6's ``RedisLockStore`` keeps each conversation's ticket lock as one JSON value that every
replica reads, changes and writes back (``LockStore.issue_ticket`` → ``get_or_create_lock`` →
``save_lock``). Two replicas receiving a message of the same conversation at the same moment both
read "no tickets", both issue ticket 0 and both run: one of the two user messages is lost from the
tracker (seen in tests/test_scaleout.py; reported upstream as RasaHQ/rasa#9213, the fix
``ConcurrentRedisLockStore`` (RasaHQ/rasa#11256) was reverted from Rasa Open Source).

This store keeps rasa's ticket semantics (first come, first served per conversation; a ticket
expires after ``lock_lifetime`` seconds so a crashed replica cannot block a conversation) but does
every step in one Redis Lua script, which Redis runs atomically:

* ``{prefix}{conversation}:next``: counter, ``INCR`` gives the next ticket number;
* ``{prefix}{conversation}:tickets``: sorted set of waiting/served ticket numbers;
* ``{prefix}{conversation}:expiry``: hash ticket → expiry time (ms, Redis server clock, so the
  replicas' clocks do not matter).

A message is processed when its ticket is the smallest live one. Used from the rasa venv only::

    lock_store:
      type: deploy.rasa_lock_store.AtomicRedisLockStore
      url: ${REDIS_HOST}
      port: ${REDIS_PORT}
      ...                                  # same keys as rasa's RedisLockStore

Source of the ticket-lock design: rasa/core/lock.py and rasa/core/lock_store.py (rasa 3.6).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncGenerator, Optional, Text

from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

#: Seconds between two checks while waiting for an earlier ticket (rasa's default is 1 s).
POLL_INTERVAL_S = 0.05

_NOW_MS = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "

# KEYS: next, tickets, expiry; ARGV: lifetime ms → ticket number
_ISSUE = _NOW_MS + """
local lifetime = tonumber(ARGV[1])
local n = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], n, n)
redis.call('HSET', KEYS[3], n, now + lifetime)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], 2 * lifetime + 60000) end
return n
"""

# KEYS: tickets, expiry → smallest live ticket number (expired ones are removed), or nil
_HEAD = _NOW_MS + """
while true do
  local first = redis.call('ZRANGE', KEYS[1], 0, 0)
  if #first == 0 then return false end
  local expiry = tonumber(redis.call('HGET', KEYS[2], first[1]) or '0')
  if expiry > now then return tonumber(first[1]) end
  redis.call('ZREM', KEYS[1], first[1])
  redis.call('HDEL', KEYS[2], first[1])
end
"""

# KEYS: tickets, expiry; ARGV: ticket number
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""


class AtomicRedisLockStore(RedisLockStore):
    """Per-conversation ticket lock in Redis, safe when several rasa replicas share it.

    Args:
        endpoint_config: the ``lock_store`` section of the endpoints file (rasa passes it for a
            ``type: module.Class`` lock store); ``url`` is the Redis host, the other keys are
            those of ``RedisLockStore`` (``port``, ``db``, ``username``, ``password``,
            ``use_ssl``, ``key_prefix``, ``socket_timeout`` …).

    Raises:
        redis.exceptions.ConnectionError: later, on first use, when Redis is unreachable
            (rasa then answers the message with an error, the gateway apologizes).
    """

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        if endpoint_config is not None:
            kwargs = {**endpoint_config.kwargs, **kwargs}
            kwargs.setdefault("host", endpoint_config.url or "localhost")
        super().__init__(**kwargs)
        self._issue = self.red.register_script(_ISSUE)
        self._head = self.red.register_script(_HEAD)
        self._release = self.red.register_script(_RELEASE)

    def _keys(self, conversation_id: Text) -> tuple[str, str, str]:
        base = f"{self.key_prefix}{conversation_id}"
        return f"{base}:next", f"{base}:tickets", f"{base}:expiry"

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Atomically take the next ticket of the conversation, valid for ``lock_lifetime`` s.

        Raises:
            LockError: Redis failed.
        """
        try:
            return int(self._issue(keys=list(self._keys(conversation_id)), args=[int(lock_lifetime * 1000)]))
        except Exception as exc:  # redis errors → rasa's own error type
            raise LockError(f"Error while acquiring lock. Error:\n{exc}") from exc

    def now_serving(self, conversation_id: Text) -> Optional[int]:
        """The smallest live ticket of the conversation (expired tickets dropped), or None."""
        _, tickets, expiry = self._keys(conversation_id)
        head = self._head(keys=[tickets, expiry])
        return None if head is None else int(head)

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        """Remove ``ticket_number``; the next ticket of the conversation may then run."""
        _, tickets, expiry = self._keys(conversation_id)
        self._release(keys=[tickets, expiry], args=[ticket_number])

    def is_someone_waiting(self, conversation_id: Text) -> bool:
        """True while the conversation has a live ticket."""
        return self.now_serving(conversation_id) is not None

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        """Release ``ticket_number`` (empty Redis keys disappear by themselves)."""
        self.finish_serving(conversation_id, ticket_number)

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: Text,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncGenerator[None, None]:
        """Hold the conversation's lock: wait until every earlier ticket is done or expired.

        Args:
            conversation_id: rasa sender id.
            lock_lifetime: seconds after which the ticket expires (``TICKET_LOCK_LIFETIME``).
            wait_time_in_seconds: upper bound of the polling interval, seconds.

        Raises:
            LockError: Redis failed, or this ticket expired while waiting.
        """
        ticket = self.issue_ticket(conversation_id, lock_lifetime)
        try:
            while True:
                head = self.now_serving(conversation_id)
                if head == ticket:
                    break
                if head is None or head > ticket:
                    raise LockError(f"Lock ticket {ticket} expired while waiting for conversation lock.")
                await asyncio.sleep(min(wait_time_in_seconds, POLL_INTERVAL_S))
            yield None  # rasa's callers do not use the lock object
        finally:
            try:
                self.cleanup(conversation_id, ticket)
            except Exception:  # never mask the original error; the ticket expires anyway
                logger.exception("could not release lock ticket %s", ticket)
