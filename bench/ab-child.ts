/**
 * One balancer for bench/ab.ts, from the build in argv[2] (a dist/ folder,
 * this checkout's or another's), with the config JSON in argv[3]. Imports by
 * path at run time, so an older build runs its own code.
 */
const [dist, json] = process.argv.slice(2) as [string, string];
const { LoadBalancer } = await import(`${dist}/src/load-balancer.js`);
const { parseConfig } = await import(`${dist}/src/config/schema.js`);
const lb = new LoadBalancer(
  parseConfig(JSON.parse(json), { source: '<ab>', allowEphemeralListen: true }),
);
await lb.start();
process.send?.({ port: lb.address('bench').port });
process.on('disconnect', () => {
  void lb.close(0).then(() => process.exit(0));
});
