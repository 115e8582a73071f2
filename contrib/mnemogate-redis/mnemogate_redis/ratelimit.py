"""Token buckets in Redis, shared by every instance. One Lua script reads the bucket, refills it
for the time passed (Redis's own clock, so instances' clocks do not matter), takes a token when
one is there and writes it back: atomic, one round trip per request."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mnemogate.core.contracts import RateLimitDecision

if TYPE_CHECKING:
    import redis.asyncio as aioredis

# KEYS[1] bucket; ARGV: capacity, refill per second, take (1) or peek (0).
# Returns {allowed, tokens left as a string} (Lua numbers would be truncated to integers).
TOKEN_BUCKET = """
local capacity = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1])
local at = tonumber(bucket[2])
if tokens == nil or at == nil then
  tokens = capacity
  at = now
end
tokens = math.min(capacity, tokens + math.max(0, now - at) * refill)
local allowed = 0
if tokens >= 1 then
  allowed = 1
end
if ARGV[3] == '1' then
  if allowed == 1 then
    tokens = tokens - 1
  end
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', now))
  -- A bucket idle long enough to be full again is the same as no bucket at all.
  redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / refill * 1000) + 1000)
end
return {allowed, string.format('%.6f', tokens)}
"""


class RedisBucketStore:
    """The rate-limit plugin's bucket store (``take``/``peek``), in Redis."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = f"{prefix}ratelimit:"
        self.script = client.register_script(TOKEN_BUCKET)

    async def _run(self, key: str, capacity: int, refill_per_second: float, take: bool) -> RateLimitDecision:
        allowed, tokens = await self.script(
            keys=[self.prefix + key], args=[capacity, repr(refill_per_second), "1" if take else "0"]
        )
        return RateLimitDecision.of(float(tokens), capacity, refill_per_second, bool(allowed))

    async def take(self, key: str, capacity: int, refill_per_second: float) -> RateLimitDecision:
        return await self._run(key, capacity, refill_per_second, True)

    async def peek(self, key: str, capacity: int, refill_per_second: float) -> RateLimitDecision:
        return await self._run(key, capacity, refill_per_second, False)

    async def close(self) -> None:
        await self.client.aclose()
