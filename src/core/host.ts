/**
 * Host names that mean this machine. Registries there get plain HTTP by default and no request-rate
 * throttling: both are about remote services.
 */

/** True for hosts that get plain HTTP by default: localhost, 127.0.0.0/8 and ::1. */
export function isLoopbackHost(registry: string): boolean {
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(registry);
  const host = (m?.[1] ?? registry).toLowerCase();
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
