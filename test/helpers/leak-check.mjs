// Loaded before every test file (see scripts/test.mjs): after the file's last
// test, anything still holding the event loop open (a server, socket, timer,
// child process, database pool) fails the file. Unref'd handles don't count.
import { after } from 'node:test';

const IGNORED = new Set(['PipeWrap', 'TTYWrap', 'FSReqCallback', 'FSReqPromise', 'GetAddrInfoReqWrap']);

after(async () => {
  let left = [];
  for (let i = 0; i < 40; i++) {
    left = process.getActiveResourcesInfo().filter((r) => !IGNORED.has(r));
    if (left.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50).unref());
  }
  throw new Error(`Leak check: still open after the last test: ${left.join(', ')} (close what the tests opened)`);
});
