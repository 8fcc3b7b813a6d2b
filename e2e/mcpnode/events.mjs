// A Node agent that reports events to $CASSETTEPROXY_URL three ways: with
// the built-in fetch (Node before 24 ignores the proxy variables: origin
// form, straight to the proxy), through HTTP_PROXY in absolute form
// (undici's ProxyAgent without a tunnel), and through a CONNECT tunnel to
// the proxy's own address (undici's EnvHttpProxyAgent, as agents set it up
// for their tools). It prints each answer's sequence number.
import { fetch as undiciFetch, ProxyAgent, EnvHttpProxyAgent } from "undici";

const url = `${process.env.CASSETTEPROXY_URL}/_cassetteproxy/v1/events`;

async function post(f, event, opts = {}) {
  const r = await f(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(event),
    ...opts,
  });
  const text = await r.text();
  if (r.status !== 202) throw new Error(`${event.name}: ${r.status} ${text}`);
  return JSON.parse(text).seq;
}

const seqs = [
  await post(fetch, { kind: "note", name: "node-origin" }),
  await post(undiciFetch, { kind: "artifact", name: "node-absolute", path: "report.json" },
    { dispatcher: new ProxyAgent({ uri: process.env.HTTP_PROXY, proxyTunnel: false }) }),
  await post(undiciFetch, { kind: "claim", name: "node-tunnel", status: "done", artifact_refs: ["report.json"] },
    { dispatcher: new EnvHttpProxyAgent() }),
];
console.log(JSON.stringify(seqs));
