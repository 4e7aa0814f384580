import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { POD } from '../../charts/pod-layout';

// Docker cannot run here; these check the Dockerfile agrees with the pod layout and our rules.
const dockerfile = readFileSync(path.join(__dirname, '..', '..', 'image', 'Dockerfile'), 'utf8');
const arg = (name: string) => new RegExp(`^ARG ${name}=(.+)$`, 'm').exec(dockerfile)?.[1];

test('a pinned OpenResty base image, never a floating tag', () => {
  expect(arg('OPENRESTY_IMAGE')).toMatch(/^openresty\/openresty:\d+\.\d+\.\d+\.\d+-\d+-bookworm$/);
  expect(dockerfile).toMatch(/^FROM \$\{OPENRESTY_IMAGE\}$/m);
});

test('lua-resty-auto-ssl 0.13.1 installed with luarocks into the tree on the pods\' Lua path', () => {
  expect(arg('AUTO_SSL_ROCK_VERSION')).toBe('0.13.1-1');
  expect(dockerfile).toContain('luarocks --lua-version=5.1 --tree=/usr/local/openresty/luajit install lua-resty-auto-ssl "${AUTO_SSL_ROCK_VERSION}"');
  expect(POD.luarocksLuaDir).toBe('/usr/local/openresty/luajit/share/lua/5.1');
});

test('no dehydrated, sockproc or hook script in the image: issuance is our Lua ACME client', () => {
  expect(dockerfile).not.toMatch(/dehydrated=/);
  expect(dockerfile).toContain('rm -rf /usr/local/openresty/luajit/bin/resty-auto-ssl;');
  expect(dockerfile).toMatch(/apt-get purge -y [^;]*\bcurl\b/);
});

test('runs as the non-root user the pod expects, with its Lua, fallback certificate and writable dirs', () => {
  expect(arg('EDGE_UID')).toBe(String(POD.uid));
  expect(dockerfile).toMatch(/^USER \$\{EDGE_UID\}:\$\{EDGE_UID\}$/m);
  expect(dockerfile).toContain(`-keyout ${POD.fallbackKey} -out ${POD.fallbackCert}`);
  expect(dockerfile).toContain(`COPY lua/ ${POD.luaDir}/`);
  expect(dockerfile).toContain(POD.autoSslDir);
  expect(dockerfile).toMatch(/^STOPSIGNAL SIGQUIT$/m);
});

test('the entrypoint runs the same nginx.conf as the chart', () => {
  expect(dockerfile).toContain(`ENTRYPOINT ["${POD.nginxBinary}", "-c", "${POD.nginxConf}", "-e", "stderr", "-g", "daemon off;"]`);
});
