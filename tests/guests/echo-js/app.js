// Test guest for WarpGrid's wasi:http trigger (componentize-js / StarlingMonkey, wasi:http/incoming-handler@0.2.10).
//   /echo      streams the request body back; copies x-echo into x-echoed
//   /headers   answers the request method, path and headers as JSON
//   /fetch     ?url=... calls it through wasi:http/outgoing-handler and answers its status and body (or the error)
//   /silent    never responds (the host must end the request with a clear error)
addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (url.pathname.endsWith('/silent')) {
    return;
  }
  event.respondWith(handle(event.request, url));
});

async function handle(request, url) {
  const path = url.pathname;
  if (path.endsWith('/echo')) {
    const headers = { 'content-type': request.headers.get('content-type') || 'application/octet-stream' };
    const echo = request.headers.get('x-echo');
    if (echo) headers['x-echoed'] = echo;
    return new Response(request.body, { status: 200, headers });
  }
  if (path.endsWith('/headers')) {
    const all = {};
    for (const [k, v] of request.headers) all[k] = v;
    return new Response(JSON.stringify({ method: request.method, path, query: url.search, headers: all }),
      { headers: { 'content-type': 'application/json', 'x-guest': 'echo-js' } });
  }
  if (path.endsWith('/fetch')) {
    try {
      const r = await fetch(url.searchParams.get('url'));
      return new Response(`status=${r.status} body=${await r.text()}`, { status: 200 });
    } catch (e) {
      return new Response(`error=${e}`, { status: 502 });
    }
  }
  return new Response('not found\n', { status: 404 });
}
