import Redis from 'ioredis';

/** A client for the tests to look into Redis themselves (`call('GET', key)` and so on). */
export async function connectStore(port: number): Promise<Redis> {
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  await redis.connect();
  return redis;
}
