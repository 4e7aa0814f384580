#!/usr/bin/env node
// npm run edge:local: the whole edge on this machine (see README, "Local edge").
import * as os from 'node:os';
import * as path from 'node:path';
import { findAutoSslTree } from './local-edge/auto-ssl-tree';
import { LocalEdge } from './local-edge/local-edge';

const USAGE = `usage: npm run edge:local
The whole edge on this machine, every server on 127.0.0.1: Redis, pebble (ACME) with
pebble-challtestsrv, a domain-check endpoint, a stand-in origin, two nginx instances and a
load balancer speaking PROXY protocol in front of them. Ctrl-C stops everything it started.
Settings come from the environment:
  AUTO_SSL_TREE          (required) root of a luarocks tree with lua-resty-auto-ssl 0.13.1,
                         e.g. /opt/lua-resty-auto-ssl
  EDGE_LOCAL_ALLOW       names the domain check allows, comma-separated (default proposals.fancycorp.test)
  EDGE_LOCAL_HTTP_PORT   the load balancer's http port (default 8080)
  EDGE_LOCAL_HTTPS_PORT  the load balancer's https port (default 8443)
  EDGE_LOCAL_DIR         every file of the run (default <tmp>/edge-local-<pid>)
See docs/local-edge.md.`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(USAGE);
    process.exit(0);
  }
  if (args.length > 0) {
    console.error(`edge:local: unexpected arguments: ${args.join(' ')}\n${USAGE}`);
    process.exit(2);
  }
  const { tree, reason } = findAutoSslTree();
  if (!tree) {
    console.error(`edge:local needs lua-resty-auto-ssl: ${reason}`);
    process.exit(2);
  }
  const workDir = process.env.EDGE_LOCAL_DIR ?? path.join(os.tmpdir(), `edge-local-${process.pid}`);
  const allowed = (process.env.EDGE_LOCAL_ALLOW ?? 'proposals.fancycorp.test').split(',').filter(Boolean);
  const edge = await LocalEdge.start({
    workDir,
    autoSslTree: tree,
    ports: { http: Number(process.env.EDGE_LOCAL_HTTP_PORT ?? 8080), https: Number(process.env.EDGE_LOCAL_HTTPS_PORT ?? 8443) },
    allowedDomains: allowed,
  });

  const name = allowed[0] ?? 'proposals.fancycorp.test';
  console.log(`
Local edge running (files in ${workDir}):
  load balancer (PROXY protocol, like the NLB)  http://127.0.0.1:${edge.http.port}  https://127.0.0.1:${edge.https.port}
  nginx instances                               ${edge.instances.map((i) => `${i.name}: https ${i.profile.instance.httpsPort}, status http://127.0.0.1:${i.profile.instance.statusPort}/metrics`).join('; ')}
  redis                                         127.0.0.1:${edge.redis.port}  (keys "local:*")
  pebble (ACME)                                 ${edge.pebble.directoryUrl}
  domain check (allows ${allowed.join(', ') || 'nothing'})  ${edge.domainCheck.url}?domain=<name>
  domains API                                   ${edge.instances.map((i) => `${i.name}: http://127.0.0.1:${i.profile.instance.apiPort}`).join('; ')}  (token in ${edge.apiTokenFile})

Try it: the first request gets a certificate issued during the handshake (a few seconds),
the next ones are served from the cache:

  curl --resolve ${name}:${edge.https.port}:127.0.0.1 --cacert ${edge.issuingChainFile} https://${name}:${edge.https.port}/

A name the domain check does not allow gets the self-signed fallback certificate (curl fails to verify it):

  curl --resolve not-ours.test:${edge.https.port}:127.0.0.1 --cacert ${edge.issuingChainFile} https://not-ours.test:${edge.https.port}/

Register a name before its first visitor, then see its status (the domains API):

  export EDGE_API_TOKEN=$(cat ${edge.apiTokenFile})
  curl -X PUT -H "Authorization: Bearer $EDGE_API_TOKEN" http://127.0.0.1:${edge.instances[0].profile.instance.apiPort}/v1/domains/${name}
  curl -H "Authorization: Bearer $EDGE_API_TOKEN" http://127.0.0.1:${edge.instances[0].profile.instance.apiPort}/v1/domains/${name}

Allow more names when starting: EDGE_LOCAL_ALLOW=a.test,b.test npm run edge:local

Ctrl-C stops everything.`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log('\nStopping the local edge...');
    await edge.stop();
    console.log('Stopped.');
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error) => {
  console.error(`edge:local failed: ${error.message}`);
  process.exit(1);
});
