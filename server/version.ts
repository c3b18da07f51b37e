/** The server's protocol and release version, reported by /v1/health and /v1/config. */
export const SERVER_VERSION = '0.1.0';
