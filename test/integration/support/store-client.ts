import Redis from 'ioredis';

/** A client for the tests to look into Redis themselves (`call('GET', key)` and so on). */
export async function connectStore(port: number): Promise<Redis> {
  // disconnectTimeout 0: disconnect() after the server went away leaves no 2 s timer behind
  // (jest would report an open handle).
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, disconnectTimeout: 0 });
  await redis.connect();
  return redis;
}
