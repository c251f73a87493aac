# The Rack app of puma.toml: answers "pid=PID" with the pid of the worker that served the request.
run ->(_env) { [200, { "content-type" => "text/plain" }, ["pid=#{Process.pid}\n"]] }
