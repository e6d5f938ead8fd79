// Hello world for WarpGrid in TypeScript (AssemblyScript 0.28 with @assemblyscript/wasi-shim), WAGI convention
// (WASI preview 1 command: the shim's asconfig exports _start). Reads PATH_INFO from the environment and writes the
// CGI header, a blank line and the body.
const path: string = process.env.has("PATH_INFO") ? process.env.get("PATH_INFO") : "";
process.stdout.write("Content-Type: text/plain\n\nHello from TypeScript (AssemblyScript) on WarpGrid! You asked for " + path + "\n");
