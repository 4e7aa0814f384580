/** The labels every object of an environment's workload carries; the selectors use a subset. */
export function workloadLabels(component: 'edge' | 'redis', environment: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': component,
    'app.kubernetes.io/instance': environment,
    'app.kubernetes.io/part-of': 'custom-domain-edge',
  };
}

/** The labels that select a component's pods (stable across releases). */
export function selectorLabels(component: 'edge' | 'redis', environment: string): Record<string, string> {
  return { 'app.kubernetes.io/name': component, 'app.kubernetes.io/instance': environment };
}
