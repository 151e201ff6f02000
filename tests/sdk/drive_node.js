// Drives one npm client library against a capture server: every call type once, then flush.
// Usage: node drive_node.js <rudder|segment> <host> <writeKey>   (NODE_PATH: the npm cache's node_modules)
'use strict';
const [kind, host, writeKey] = process.argv.slice(2);

const calls = (a, seg) => {
  a.track({ userId: 'u1', event: 'Order Completed', properties: { order_id: 1 } });
  a.identify({ anonymousId: 'anon-1', traits: { plan: 'pro' } });
  a.page({ userId: 'u1', name: 'Home', properties: { path: '/' } });
  if (!seg) a.screen({ userId: 'u1', name: 'Home' });
  a.group({ userId: 'u1', groupId: 'g1', traits: { name: 'Acme' } });
  a.alias({ userId: 'u1', previousId: 'anon-1' });
};

async function main() {
  if (kind === 'rudder') {
    const Analytics = require('@rudderstack/rudder-sdk-node');
    const a = new Analytics(writeKey, { dataPlaneUrl: host, flushInterval: 200, logLevel: 'error' });
    calls(a, false);
    await a.flush();
  } else if (kind === 'segment') {
    const { Analytics } = require('@segment/analytics-node');
    const a = new Analytics({ writeKey, host, flushInterval: 200, maxEventsInBatch: 15 });
    calls(a, true);
    await a.closeAndFlush({ timeout: 10000 });
  } else {
    throw new Error(`unknown library ${kind}`);
  }
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
