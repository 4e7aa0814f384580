import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LUA_ROOT } from '../../charts/lua-sources';
import { POD } from '../../charts/pod-layout';
import { findAutoSslTree } from '../../bin/local-edge/auto-ssl-tree';
import { reportSkipped } from './support/skipped';
import { nginxBinary, nginxModules } from '../../bin/local-edge/nginx-instance';
import { makeSelfSigned } from '../../bin/local-edge/pki';

// The committed rendered/<env>/nginx.conf files, checked by a real nginx (`nginx -t`) with the
// lua module. The pods' paths are mapped to this machine's: our lua/, the lua-resty-auto-ssl
// tree ($AUTO_SSL_TREE), a throwaway fallback certificate and a temporary run directory; Debian's
// nginx also needs its lua module loaded (OpenResty has it built in). Nothing else is changed.
const root = path.join(__dirname, '..', '..');
const { tree, reason } = findAutoSslTree();
if (!tree) reportSkipped('rendered nginx.conf under nginx -t', reason!);
const describeWithTree = tree ? describe : describe.skip;

describeWithTree('rendered nginx.conf passes nginx -t', () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'edge-nginx-t-'));
  const fallback = makeSelfSigned(work, 'fallback', 'fallback.invalid');
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  function localCopy(env: string): string {
    const modules = nginxModules().map((m) => `load_module ${m};\n`).join('');
    const mapped = modules + readFileSync(path.join(root, 'rendered', env, 'nginx.conf'), 'utf8')
      .split(`${POD.runDir}/`).join(`${work}/`)
      .split(POD.autoSslDir).join(path.join(work, 'auto-ssl'))
      .split(POD.luarocksLuaDir).join(`${tree!.root}/share/lua/5.1`)
      .split(POD.luaDir).join(LUA_ROOT)
      .split(POD.fallbackCert).join(fallback.cert)
      .split(POD.fallbackKey).join(fallback.key);
    const file = path.join(work, `${env}.nginx.conf`);
    writeFileSync(file, mapped);
    return file;
  }

  /** Runs `nginx -t` with stdout/stderr to a file, as a container runtime gives them (a socket would not do for /dev/stdout). */
  function nginxTest(file: string): { ok: boolean; output: string } {
    const logFile = `${file}.log`;
    const log = openSync(logFile, 'w');
    let ok = true;
    try {
      execFileSync(nginxBinary(), ['-t', '-c', file], { stdio: ['ignore', log, log] });
    } catch {
      ok = false;
    } finally {
      closeSync(log);
    }
    return { ok, output: readFileSync(logFile, 'utf8') };
  }

  test.each(['prod', 'dev-example'])('%s', (env) => {
    const result = nginxTest(localCopy(env));
    expect(result.output).toContain('test is successful');
    expect(result.output).not.toMatch(/\[(emerg|alert|crit|error)\]/);
    expect(result.ok).toBe(true);
  });

  test('nginx -t fails on a broken copy (the check is real)', () => {
    const file = localCopy('prod');
    writeFileSync(file, readFileSync(file, 'utf8').replace('ssl_protocols TLSv1.2 TLSv1.3;', 'ssl_protocols TLSv9;'));
    const result = nginxTest(file);
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/invalid value "TLSv9"/);
  });
});
