import { existsSync } from 'node:fs';
import * as path from 'node:path';

/** lua-resty-auto-ssl 0.13.1 and its Lua dependencies, as a luarocks-style tree. */
export interface AutoSslTree {
  readonly root: string;
}

/**
 * Finds the tree named by $AUTO_SSL_TREE (`$AUTO_SSL_TREE/share/lua/5.1/resty/auto-ssl.lua`
 * beside its luarocks dependency shell-games). Its helper programs (dehydrated, sockproc) are not used: issuance
 * is our ACME client. Returns the tree, or the reason it cannot be used.
 */
export function findAutoSslTree(env: NodeJS.ProcessEnv = process.env): { tree?: AutoSslTree; reason?: string } {
  const root = env.AUTO_SSL_TREE;
  if (!root) {
    return { reason: 'AUTO_SSL_TREE is not set (the root of a luarocks tree with lua-resty-auto-ssl 0.13.1; see README, "Local edge")' };
  }
  // resty.lock and resty.http may come from OpenResty's own lualib rather than the tree.
  const needed = ['share/lua/5.1/resty/auto-ssl.lua', 'share/lua/5.1/shell-games.lua'];
  const missing = needed.filter((p) => !existsSync(path.join(root, p)));
  if (missing.length > 0) {
    return { reason: `AUTO_SSL_TREE=${root} lacks ${missing.join(', ')}` };
  }
  return { tree: { root } };
}
