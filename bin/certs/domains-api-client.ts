/** A domain's status, as the domains API answers it (docs/domains-api.yaml, DomainStatus). */
export interface DomainStatus {
  readonly name: string;
  readonly state: 'queued' | 'issuing' | 'issued' | 'failing' | 'cooling_off' | 'not_allowed' | 'dns_not_pointing' | 'expired';
  readonly reason: string | null;
  readonly notAfter: string | null;
  readonly renewAt: string | null;
  readonly profile: string | null;
  readonly lastError: string | null;
  readonly nextAttemptAt: string | null;
  readonly dns: { readonly status: 'pointing' | 'not_pointing' | 'unknown'; readonly detail: string } | null;
}

/** One name of a listing (docs/domains-api.yaml, DomainList). */
export interface ListedDomain {
  readonly name: string;
  readonly state: DomainStatus['state'];
  /** Given in the issued and expired listings (from the certificate index). */
  readonly notAfter?: string;
}

export interface DomainList {
  readonly domains: ListedDomain[];
  readonly nextCursor: string | null;
}

/** The answer of DELETE (docs/domains-api.yaml, Deleted). */
export interface Deleted {
  readonly name: string;
  readonly deleted: boolean;
  /** Whether a certificate was stored (and is now deleted). */
  readonly certificate: boolean;
}

/** An error answer (docs/domains-api.yaml: PlainError, BadName, EdgeHostname, UnknownDomain, BadParameter). */
export interface ApiErrorBody {
  readonly error: string;
  readonly reason?: string;
  readonly parameter?: string;
  readonly name?: string;
}

/** An answer of the API: its HTTP status and JSON body. */
export interface ApiReply<T> {
  readonly status: number;
  readonly body: T;
  /** Present, false, when the body was not JSON (then body is { error: the text's start }): not the API answering. */
  readonly json?: false;
}

/** The API could not be asked at all (nothing listening, no answer in time); `code` says which. */
export class ApiUnreachable extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

/** Names per page the API allows at most (docs/domains-api.yaml, limit). */
export const MAX_PAGE_SIZE = 1000;

/**
 * A client of an edge's domains API: a base URL (an edge pod's API port, e.g. through
 * `kubectl port-forward`) and the bearer token, which it never puts in an error or a URL.
 */
export class DomainsApiClient {
  /**
   * @param baseUrl e.g. http://127.0.0.1:8082
   * @param token the bearer token
   * @param timeoutMs for each call; @default 10000
   */
  constructor(private readonly baseUrl: string, private readonly token: string, private readonly timeoutMs = 10000) {}

  private async call<T>(method: string, path: string): Promise<ApiReply<T>> {
    const url = new URL(path, this.baseUrl);
    const abort = new AbortController();
    // Our own timer, cleared in every case (AbortSignal.timeout's would outlive the call).
    const timer = setTimeout(() => abort.abort(), this.timeoutMs);
    try {
      let res: Response;
      try {
        res = await fetch(url, {
          method, signal: abort.signal, headers: { Authorization: `Bearer ${this.token}`, Accept: 'application/json' },
        });
      } catch (error) {
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        if (abort.signal.aborted) throw new ApiUnreachable(`no answer from ${url.origin} within ${this.timeoutMs / 1000} s`, 'TIMEOUT');
        const code = cause?.code ?? 'FAILED';
        throw new ApiUnreachable(`cannot reach ${url.origin} (${cause?.code ?? cause?.message ?? (error as Error).message})`, code);
      }
      const text = await res.text();
      try {
        return { status: res.status, body: JSON.parse(text) as T };
      } catch {
        return { status: res.status, body: { error: text.slice(0, 200) } as T, json: false };
      }
    } finally {
      clearTimeout(timer);
    }
  }

  register(name: string): Promise<ApiReply<DomainStatus>> {
    return this.call('PUT', `/v1/domains/${encodeURIComponent(name)}`);
  }

  status(name: string): Promise<ApiReply<DomainStatus>> {
    return this.call('GET', `/v1/domains/${encodeURIComponent(name)}`);
  }

  remove(name: string): Promise<ApiReply<Deleted>> {
    return this.call('DELETE', `/v1/domains/${encodeURIComponent(name)}`);
  }

  list(state: DomainStatus['state'], cursor?: string, limit?: number): Promise<ApiReply<DomainList>> {
    const query = new URLSearchParams({ state, ...(cursor ? { cursor } : {}), ...(limit ? { limit: String(limit) } : {}) });
    return this.call('GET', `/v1/domains?${query}`);
  }

  /**
   * Every name in a state, following nextCursor to the last page. The first answer that is not a
   * 200 is returned as it is (with no domains).
   */
  async listAll(state: DomainStatus['state'], pageSize = MAX_PAGE_SIZE): Promise<ApiReply<ListedDomain[]> | ApiReply<ApiErrorBody>> {
    const domains: ListedDomain[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await this.list(state, cursor, pageSize);
      if (page.status !== 200 || page.json === false) return page as unknown as ApiReply<ApiErrorBody>;
      domains.push(...page.body.domains);
      if (page.body.nextCursor === null) return { status: 200, body: domains };
      cursor = page.body.nextCursor;
    }
  }
}
