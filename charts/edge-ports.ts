/**
 * Names and ports shared by the edge chart and the stacks that point load balancers at it.
 * The NLB's target groups bind to the Service by these names, so they must stay stable.
 */
export const EDGE_SERVICE_NAME = 'edge';

/** Plain HTTP (NLB :80): ACME http-01 challenges, everything else redirected to https. */
export const HTTP_PORT = { service: 80, container: 8080 } as const;
/** HTTPS (NLB :443): TLS terminated by nginx with certificates from lua-resty-auto-ssl. */
export const HTTPS_PORT = { service: 443, container: 8443 } as const;
