// The server of node.toml: answers "pid=PID" with the pid of the worker that served the request.
"use strict";
const http = require("http");

const server = http.createServer((request, response) => {
    response.setHeader("Content-Type", "text/plain");
    response.end(`pid=${process.pid}\n`);
});
// {fd: 3}: the socket preforkctl bound and handed over (LISTEN_FDS); node never binds an address itself.
server.listen({ fd: 3 });
// preforkctl's stop signal: stop accepting, finish what is in flight, then exit 0 once nothing is left.
// close() closes this process's copy of the socket only; the other workers keep serving on theirs.
process.on("SIGTERM", () => server.close());
