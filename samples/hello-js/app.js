// Hello world for WarpGrid in JavaScript: a WASI 0.2 component exporting wasi:http/incoming-handler@0.2.10.
// componentize-js (SpiderMonkey) maps the service-worker style `fetch` event onto the incoming handler.
addEventListener('fetch', (event) => event.respondWith(handle(event.request)));

function handle(request) {
  const url = new URL(request.url);
  const body = `Hello from JavaScript on WarpGrid! You asked for ${url.pathname}\n`;
  return new Response(body, { headers: { 'content-type': 'text/plain' } });
}
