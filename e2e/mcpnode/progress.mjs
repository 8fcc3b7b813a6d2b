// An MCP client built on the official TypeScript SDK. It connects to the
// Streamable HTTP server at argv[2] through HTTP_PROXY (undici's
// EnvHttpProxyAgent: Node's built-in fetch ignores proxy variables before
// Node 24), lists the tools, calls echo argv[3] times (each call moves every later JSON-RPC
// id and progress token by one), then calls trigger-long-running-operation
// with a progress callback, and prints the progress it received and the
// result as one JSON line.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { EnvHttpProxyAgent, setGlobalDispatcher } from "undici";

setGlobalDispatcher(new EnvHttpProxyAgent());

const [url, extra = "0"] = process.argv.slice(2);
const client = new Client({ name: "cassetteproxy-e2e", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
await client.listTools(); // as an agent does: it learns which tools exist
for (let i = 0; i < Number(extra); i++) {
  await client.callTool({ name: "echo", arguments: { message: "shift" } });
}
const progress = [];
const result = await client.callTool(
  { name: "trigger-long-running-operation", arguments: { duration: 0.3, steps: 3 } },
  undefined,
  { onprogress: (p) => progress.push(p) },
);
console.log(JSON.stringify({ progress, result: result.content[0].text }));
await client.close();
