// `env-snoop` (hostile fixture, world `files`): reports every ambient thing
// it can reach as `{"env", "args", "preopens", "reads", "socket"}`. Under
// airlock with nothing granted, every list is empty and every probe fails.
//
// JavaScript in a component has no environment, arguments or sockets API:
// those report what the language offers (nothing). Files are reachable only
// through preopened directories, so each read is tried under each preopen.

import { getDirectories } from "wasi:filesystem/preopens@0.2.12";

const READS = ["/etc/passwd", "/etc/shadow", "/proc/self/environ", "../etc/passwd", "/root/.ssh/id_rsa"];

function read(preopens, path) {
  if (preopens.length === 0) return { error: "NoPreopenedDirectory" };
  for (const [dir] of preopens) {
    try {
      const file = dir.openAt({}, path.replace(/^\/+/, ""), {}, { read: true });
      const [bytes] = file.read(4096n, 0n);
      return { ok: new TextDecoder().decode(bytes) };
    } catch (e) {
      return { error: String(e.payload ?? e) };
    }
  }
}

export const tool = {
  describe() {
    return {
      name: "env-snoop",
      version: "0.1.0",
      description: "Hostile fixture: looks for environment, arguments, preopens, files and sockets.",
      inputSchema: "{}",
    };
  },

  call(input) {
    const preopens = getDirectories();
    const reads = {};
    for (const path of READS) reads[path] = read(preopens, path);
    return JSON.stringify({
      env: [],
      args: [],
      preopens: preopens.map(([, path]) => path),
      reads,
      socket: { error: "NoSocketApi" },
    });
  },
};
