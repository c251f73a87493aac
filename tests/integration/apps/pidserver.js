require("http").createServer((q,s)=>s.end("pid="+process.pid+"\n")).listen({fd:3});
