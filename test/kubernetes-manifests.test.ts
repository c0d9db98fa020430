import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { isUnixListen } from '../src/config/admin.js';
import { parseToml } from '../src/config/load.js';
import { parseConfig } from '../src/config/schema.js';
import { API_ACCESS } from '../src/discovery/kubernetes.js';

const root = join(import.meta.dirname, '..', '..');
const dir = join(root, 'examples', 'kubernetes');

// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form YAML, checked field by field
type Obj = any;

/** Every object of every manifest, by kind. */
function manifests(): Map<string, Obj[]> {
  const byKind = new Map<string, Obj[]>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${f} parses`);
      const o = doc.toJS();
      if (!o) continue;
      byKind.set(o.kind, [...(byKind.get(o.kind) ?? []), o]);
    }
  }
  return byKind;
}

function one(m: Map<string, Obj[]>, kind: string): Obj {
  const list = m.get(kind) ?? [];
  assert.equal(list.length, 1, `one ${kind}`);
  return list[0];
}

/** The Dockerfile's final-stage instructions this test holds the manifests to. */
function dockerfile(): { cmd: string[]; user: string; expose: number[] } {
  const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(text)?.[1] ?? '[]');
  const user = /^USER (\S+)$/m.exec(text)?.[1] ?? '';
  const expose = (/^EXPOSE (.+)$/m.exec(text)?.[1] ?? '').split(/\s+/).map(Number);
  return { cmd, user, expose };
}

const seconds = (ms: number) => ms / 1000;

test('kubernetes manifests: they parse, and agree with the image, the config and the discovery code', () => {
  const m = manifests();
  const image = dockerfile();
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

  // The ConfigMap's config is valid, follows a Service in-cluster, and is where the image reads it.
  const cm = one(m, 'ConfigMap');
  const configPath = image.cmd[image.cmd.indexOf('--config') + 1] as string;
  const file = configPath.split('/').at(-1) as string;
  const toml = cm.data[file];
  assert.ok(toml, `the ConfigMap holds ${file}`);
  const config = parseConfig(parseToml(toml, file), { source: file });
  const svc = config.services[0];
  assert.equal(svc?.discovery?.kind, 'kubernetes');
  assert.equal(svc?.discovery?.kubernetes?.kubeconfig, null, 'in-cluster');
  const admin = config.admin;
  assert.ok(admin && !isUnixListen(admin.listen), 'an admin port for the probes');

  const deploy = one(m, 'Deployment');
  assert.equal(deploy.spec.replicas, 2);
  const pod = deploy.spec.template.spec;
  const [c] = pod.containers;
  assert.equal(pod.containers.length, 1);
  assert.equal(c.image, `blitz-lb:${pkg.version}`, "the image of this package's version");
  assert.equal(c.command, undefined, "the image's CMD runs");
  assert.equal(c.args, undefined);
  // The config volume is the ConfigMap, mounted where the CMD reads the file.
  const mount = c.volumeMounts.find((v: Obj) => `${v.mountPath}/${file}` === configPath);
  assert.ok(mount, `a volume mounted at ${configPath.slice(0, -file.length - 1)}`);
  const vol = pod.volumes.find((v: Obj) => v.name === mount.name);
  assert.equal(vol.configMap.name, cm.metadata.name);

  // Ports: the service's listen port and the admin port, named, and exposed by the image.
  const portOf = (name: string) => c.ports.find((p: Obj) => p.name === name)?.containerPort;
  assert.equal(portOf('web'), svc?.listen.port);
  assert.equal(portOf('admin'), admin.listen.port);
  for (const p of c.ports)
    assert.ok(image.expose.includes(p.containerPort), `EXPOSE ${p.containerPort}`);
  assert.equal(c.readinessProbe.httpGet.path, '/readyz');
  assert.equal(c.livenessProbe.httpGet.path, '/livez');
  for (const probe of [c.readinessProbe, c.livenessProbe])
    assert.equal(portOf(probe.httpGet.port), admin.listen.port, 'probes ask the admin port');

  // Non-root as the image's user, read-only root filesystem, resources asked for.
  const [uid, gid] = image.user.split(':').map(Number);
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(pod.securityContext.runAsUser, uid);
  assert.equal(pod.securityContext.runAsGroup, gid);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.ok(c.resources.requests.cpu && c.resources.requests.memory);

  // The grace period covers the preStop wait, drain_delay and shutdown_timeout.
  const [verb, secs] = c.lifecycle.preStop.exec.command;
  assert.equal(verb, 'sleep');
  const needed =
    Number(secs) + seconds(config.process.drainDelayMs) + seconds(config.process.shutdownTimeoutMs);
  assert.ok(
    pod.terminationGracePeriodSeconds > needed,
    `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} > ${needed}`,
  );

  // The Service: a LoadBalancer keeping the client's address, to the pods' web port.
  const service = one(m, 'Service');
  assert.equal(service.spec.type, 'LoadBalancer');
  assert.equal(service.spec.externalTrafficPolicy, 'Local');
  assert.deepEqual(service.spec.selector, deploy.spec.selector.matchLabels);
  for (const [k, v] of Object.entries(service.spec.selector))
    assert.equal(deploy.spec.template.metadata.labels[k], v);
  assert.equal(service.spec.ports[0].targetPort, 'web');

  // RBAC: the pod's ServiceAccount may read EndpointSlices (what the code asks), nothing more.
  const sa = one(m, 'ServiceAccount');
  assert.equal(pod.serviceAccountName, sa.metadata.name);
  const role = one(m, 'Role');
  assert.equal(role.rules.length, 1);
  const [rule] = role.rules;
  assert.deepEqual(rule.apiGroups, [API_ACCESS.group]);
  assert.deepEqual(rule.resources, [API_ACCESS.resource]);
  for (const v of API_ACCESS.verbs) assert.ok(rule.verbs.includes(v), `the Role grants ${v}`);
  assert.deepEqual([...rule.verbs].sort(), ['get', 'list', 'watch'], 'read-only verbs only');
  const binding = one(m, 'RoleBinding');
  assert.deepEqual(binding.roleRef, {
    apiGroup: 'rbac.authorization.k8s.io',
    kind: 'Role',
    name: role.metadata.name,
  });
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name }]);

  // kustomization.yaml lists every manifest.
  const k = parseAllDocuments(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'))[0]?.toJS();
  const files = readdirSync(dir).filter((n) => n.endsWith('.yaml') && n !== 'kustomization.yaml');
  assert.deepEqual([...k.resources].sort(), files.sort());
});
