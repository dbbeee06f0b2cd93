export { AgentClient, type AgentClientOptions } from "./client";
export { httpTransport, unixSocketTransport, type Transport } from "./transport";
export { sshTransport, type SshTarget } from "./ssh";
export { API_VERSION, MAX_BODY_BYTES, ROUTES, type DriverMethod, type VersionInfo } from "./routes";
