#!/usr/bin/env node
'use strict';
// Checks rendered manifests against the binaries they run and against each other: every flag a
// container passes exists in that binary's --help; the coordinator's ports, probes and Service
// agree with --grpc-address and --rest-port; workers take their index from
// JOB_COMPLETION_INDEX of an Indexed Job; the job spec the submit step sends matches the
// workers (job id, count, transport) and lies on the shared volume; GPU overlays use NCCL with
// GPUs, the CPU overlay TCP without.
//
//   node tests/deploy/check-manifests.js --bin-dir build/bin gpu=rendered/gpu.yaml cpu=...
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { parseDocuments, describe } = require('./lib/k8s-schema');

const ROOT = path.resolve(__dirname, '..', '..');
// The data plane each overlay must use; other names get the consistency checks only.
const EXPECTED_TRANSPORT = { gpu: 'nccl', jobset: 'nccl', cpu: 'tcp' };
const INDEX_ANNOTATION = "metadata.annotations['batch.kubernetes.io/job-completion-index']";

// --help texts of the binaries the manifests run, keyed as containers name them.
function readHelps(binDir) {
  const run = (bin, ...args) => execFileSync(path.join(binDir, bin), [...args, '--help'],
    { encoding: 'utf8' });
  return {
    'mxport-coordinator': run('mxport-coordinator'),
    'mxport-worker': run('mxport-worker'),
    'mxport submit': run('mxport', 'submit'),
  };
}

// "--name" of every option line of a CLI11 help text.
function helpFlags(text) {
  const flags = new Set();
  for (const line of text.split('\n')) {
    const m = /^\s+(?:-[A-Za-z],)?(--[A-Za-z0-9][\w-]*)/.exec(line);
    if (m) flags.add(m[1]);
  }
  return flags;
}

// JobSpec field names from the proto the coordinator parses the spec with.
function jobSpecFields() {
  const proto = fs.readFileSync(path.join(ROOT, 'proto/mxport/v1/export.proto'), 'utf8');
  const body = /message JobSpec \{([\s\S]*?)\n\}/.exec(proto)[1];
  return new Set([...body.matchAll(/^\s*(?:optional |repeated )?[\w.<>, ]+ (\w+) = \d+;/gm)]
    .map((m) => m[1]));
}

// {flags: Map name -> [values], positional: []} of "--name=value", "--name value", "--switch".
function parseFlags(list) {
  const flags = new Map();
  const positional = [];
  for (let i = 0; i < list.length; i++) {
    const arg = String(list[i]);
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    let name = arg;
    let value = true;
    if (eq > 0) [name, value] = [arg.slice(0, eq), arg.slice(eq + 1)];
    else if (i + 1 < list.length && !String(list[i + 1]).startsWith('--')) value = String(list[++i]);
    flags.set(name, (flags.get(name) || []).concat(value));
  }
  return { flags, positional };
}

// Every pod template: {owner, pod (PodTemplateSpec), job (JobSpec or null), jobSet, replicas}.
function podTemplates(objects) {
  const out = [];
  for (const o of objects) {
    if (o.kind === 'Deployment') out.push({ owner: o, pod: o.spec.template, job: null });
    if (o.kind === 'Job') out.push({ owner: o, pod: o.spec.template, job: o.spec, replicas: 1 });
    if (o.kind === 'JobSet') {
      for (const r of o.spec.replicatedJobs || []) {
        out.push({ owner: o, pod: r.template.spec.template, job: r.template.spec, jobSet: o,
          replicas: r.replicas === undefined ? 1 : r.replicas });
      }
    }
  }
  return out;
}

// The binary a container runs, as a readHelps() key, or null.
function binaryOf(container) {
  const command = container.command || [];
  if (command[0] === 'mxport') return `mxport ${command[1] || (container.args || [])[0]}`;
  return ['mxport-coordinator', 'mxport-worker'].includes(command[0]) ? command[0] : null;
}

const selects = (selector, labels) => selector && Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => (labels || {})[k] === v);
const hostPort = (address) => {
  const m = /^(.*):(\d+)$/.exec(address || '');
  return m ? { host: m[1], port: Number(m[2]) } : null;
};
const under = (file, dir) => file === dir || file.startsWith(dir.replace(/\/$/, '') + '/');

// All problems of one rendered overlay, plus informational notes.
function checkOverlay(name, objects, helps) {
  const errors = [];
  const notes = [];
  let checks = 0;
  const expect = (ok, message) => {
    checks++;
    if (!ok) errors.push(message);
    return ok;
  };
  const byKind = (kind) => objects.filter((o) => o.kind === kind);
  const pvcs = Object.fromEntries(byKind('PersistentVolumeClaim').map((p) => [p.metadata.name, p]));
  const namespaces = new Set(objects.map((o) => o.metadata.namespace));
  expect(namespaces.size === 1 && !namespaces.has(undefined),
    `objects must share one namespace, found ${[...namespaces].join(', ')}`);

  // Containers running mxport binaries, with their parsed flags.
  const runs = [];
  for (const t of podTemplates(objects)) {
    const spec = t.pod.spec;
    for (const c of [...(spec.initContainers || []), ...spec.containers]) {
      const where = `${describe(t.owner)} container ${c.name}`;
      const binary = binaryOf(c);
      if (!expect(binary && helps[binary], `${where}: runs ${JSON.stringify(c.command)}, ` +
          'not mxport-coordinator, mxport-worker or mxport submit (set command)')) continue;
      const list = (c.args || []).slice(binary.startsWith('mxport ') && !c.command[1] ? 1 : 0);
      const { flags, positional } = parseFlags(list);
      const known = helpFlags(helps[binary]);
      for (const flag of flags.keys()) {
        expect(known.has(flag), `${where}: ${flag} is not a flag of ${binary} (see its --help)`);
      }
      expect(positional.length === 0, `${where}: unexpected arguments ${positional.join(' ')}`);
      const env = new Set((c.env || []).map((e) => e.name));
      for (const [, v] of list.join(' ').matchAll(/\$\((\w+)\)/g)) {
        expect(env.has(v), `${where}: $(${v}) is used but not defined in env`);
      }
      runs.push({ ...t, container: c, binary, flags, where,
        one: (flag) => (flags.get(flag) || [])[0] });
    }
  }
  const mounts = (run) => (run.container.volumeMounts || []).map((m) => ({ ...m,
    volume: (run.pod.spec.volumes || []).find((v) => v.name === m.name) || {} }));
  const pvcAt = (run, file) => {
    const m = mounts(run).filter((x) => under(file, x.mountPath))
      .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    return m && m.volume.persistentVolumeClaim && pvcs[m.volume.persistentVolumeClaim.claimName];
  };

  // Coordinator.
  const coordinators = runs.filter((r) => r.binary === 'mxport-coordinator');
  if (!expect(coordinators.length === 1, 'expected one mxport-coordinator container')) {
    return { errors, notes, checks };
  }
  const coord = coordinators[0];
  expect(coord.owner.kind === 'Deployment' && coord.owner.spec.replicas === 1 &&
    coord.owner.spec.strategy && coord.owner.spec.strategy.type === 'Recreate',
  `${describe(coord.owner)}: the coordinator must be a Deployment, replicas 1, strategy Recreate`);
  const grpc = hostPort(coord.one('--grpc-address'));
  const restPort = Number(coord.one('--rest-port'));
  expect(grpc && ['0.0.0.0', '[::]'].includes(grpc.host),
    `${coord.where}: --grpc-address must listen on 0.0.0.0:<port> (probes dial the pod IP)`);
  expect(restPort > 0, `${coord.where}: --rest-port must be set`);
  const ports = coord.container.ports || [];
  const portOf = (target) => (typeof target === 'string'
    ? (ports.find((p) => p.name === target) || {}).containerPort : target);
  expect(grpc && ports.some((p) => p.containerPort === grpc.port),
    `${coord.where}: no containerPort for the gRPC port of --grpc-address`);
  expect(ports.some((p) => p.containerPort === restPort),
    `${coord.where}: no containerPort for --rest-port ${restPort}`);
  for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
    const p = coord.container[probe];
    expect(p && p.grpc && grpc && p.grpc.port === grpc.port,
      `${coord.where}: ${probe} must be a grpc probe on the gRPC port ${grpc && grpc.port}`);
  }
  const grace = coord.pod.spec.terminationGracePeriodSeconds;
  const shutdownGrace = Number(coord.one('--shutdown-grace'));
  expect(shutdownGrace > 0 && grace > shutdownGrace,
    `${coord.where}: terminationGracePeriodSeconds (${grace}) must exceed --shutdown-grace ` +
    `(${coord.one('--shutdown-grace')}), so running commits finish before SIGKILL`);
  const db = coord.one('--db') || '';
  const dbClaim = pvcAt(coord, db);
  expect(dbClaim && dbClaim.spec.accessModes.includes('ReadWriteOnce'),
    `${coord.where}: --db ${db} must lie on a ReadWriteOnce PersistentVolumeClaim`);
  const service = byKind('Service').find((s) => s.spec.clusterIP !== 'None' &&
    selects(s.spec.selector, coord.pod.metadata.labels));
  const servicePort = (containerPort) => service && service.spec.ports.find(
    (p) => portOf(p.targetPort === undefined ? p.port : p.targetPort) === containerPort);
  expect(service && grpc && servicePort(grpc.port) && servicePort(restPort),
    'a Service must select the coordinator pods and expose its gRPC and REST ports');

  // Job spec sent by the submit step.
  const roots = coord.flags.get('--allowed-root') || [];
  const submits = runs.filter((r) => r.binary === 'mxport submit');
  expect(submits.length > 0, 'no container runs mxport submit (the submit step)');
  let spec = null;
  for (const s of submits) {
    const specPath = s.one('--spec') || '';
    const mount = mounts(s).find((m) => under(specPath, m.mountPath) && m.volume.configMap);
    const map = mount && byKind('ConfigMap').find((m) => m.metadata.name === mount.volume.configMap.name);
    const text = map && (map.data || {})[path.relative(mount.mountPath, specPath)];
    if (!expect(text, `${s.where}: --spec ${specPath} is not a key of a mounted ConfigMap`)) continue;
    try {
      spec = JSON.parse(text);
    } catch (e) {
      expect(false, `${s.where}: job spec ${specPath} is not JSON: ${e.message}`);
    }
  }
  if (!spec) return { errors, notes, checks };
  const fields = jobSpecFields();
  for (const key of Object.keys(spec)) {
    expect(fields.has(key), `job spec: ${key} is not a JobSpec field of proto/mxport/v1/export.proto`);
  }
  for (const key of ['source_path', 'output_path', 'hf_config_dir'].filter((k) => spec[k])) {
    expect(roots.some((r) => under(spec[key], r)),
      `job spec ${key} ${spec[key]} is not under the coordinator's --allowed-root ${roots}`);
    const claim = pvcAt(coord, spec[key]);
    expect(claim && claim.spec.accessModes.includes('ReadWriteMany'),
      `job spec ${key} ${spec[key]}: the coordinator must mount it from a ReadWriteMany claim`);
  }

  // Workers.
  const workers = runs.filter((r) => r.binary === 'mxport-worker');
  expect(workers.length === 1, `expected one mxport-worker pod template, found ${workers.length}`);
  for (const w of workers) {
    const job = w.job || {};
    expect(job.completionMode === 'Indexed',
      `${describe(w.owner)}: workers must run as an Indexed Job (completionMode: Indexed)`);
    expect(w.replicas === 1 && job.completions === job.parallelism &&
      job.completions === Number(spec.workers_expected),
    `${describe(w.owner)}: replicas 1 and completions = parallelism = job spec workers_expected ` +
    `(${spec.workers_expected}); found ${w.replicas} x ${job.completions}/${job.parallelism}`);
    expect(!w.flags.has('--index'), `${w.where}: --index must not be set (JOB_COMPLETION_INDEX is)`);
    expect(/JOB_COMPLETION_INDEX/.test(helps['mxport-worker']),
      'mxport-worker --help does not mention JOB_COMPLETION_INDEX');
    const indexEnv = (w.container.env || []).find((e) => e.name === 'JOB_COMPLETION_INDEX');
    expect(indexEnv && indexEnv.valueFrom && indexEnv.valueFrom.fieldRef &&
      indexEnv.valueFrom.fieldRef.fieldPath === INDEX_ANNOTATION,
    `${w.where}: env JOB_COMPLETION_INDEX must come from ${INDEX_ANNOTATION}`);
    const target = hostPort(w.one('--coordinator'));
    const serviceName = target && target.host.split('.')[0];
    const namespace = target && target.host.split('.')[1];
    const gp = service && grpc && servicePort(grpc.port);
    expect(service && serviceName === service.metadata.name && gp && target.port === gp.port &&
      (!namespace || namespace === service.metadata.namespace),
    `${w.where}: --coordinator ${w.one('--coordinator')} must be the coordinator Service's gRPC ` +
    `port (${service && service.metadata.name}:${gp && gp.port})`);
    expect(w.one('--job') === spec.job_id,
      `${w.where}: --job ${w.one('--job')} differs from the job spec's job_id ${spec.job_id}`);
    const dataPort = Number(w.one('--data-port'));
    expect(dataPort > 0 && (w.container.ports || []).some((p) => p.containerPort === dataPort),
      `${w.where}: --data-port must be set and declared as a containerPort`);
    expect(w.one('--data-host') === '0.0.0.0' && w.one('--advertise-host'),
      `${w.where}: set --data-host=0.0.0.0 and --advertise-host (peers dial it)`);
    for (const s of submits.filter((x) => x.pod === w.pod)) {
      expect(s.one('--coordinator') === w.one('--coordinator'),
        `${s.where}: --coordinator differs from the worker's`);
    }
    for (const key of ['source_path', 'output_path'].filter((k) => spec[k])) {
      const claim = pvcAt(w, spec[key]);
      const coordClaim = pvcAt(coord, spec[key]);
      expect(claim && claim === coordClaim,
        `${w.where}: must mount ${spec[key]} from the coordinator's claim`);
    }
    // Pod DNS: a headless Service (Job) or the JobSet's network subdomain.
    const subdomain = w.pod.spec.subdomain;
    const headless = byKind('Service').find((s) => s.metadata.name === subdomain);
    if (w.jobSet) {
      const network = w.jobSet.spec.network || {};
      expect(network.enableDNSHostnames && network.subdomain === subdomain && !headless,
        `${describe(w.jobSet)}: network.subdomain must equal the pods' subdomain and no Service ` +
        'of that name may exist (the JobSet controller makes it)');
    } else {
      expect(headless && headless.spec.clusterIP === 'None' &&
        selects(headless.spec.selector, w.pod.metadata.labels),
      `${describe(w.owner)}: subdomain ${subdomain} must name a headless Service selecting the pods`);
    }
    // Transport and GPUs.
    const transport = w.one('--transport');
    const gpu = Number(w.one('--gpu'));
    const gpus = [...(w.pod.spec.initContainers || []), ...w.pod.spec.containers]
      .map((c) => Number(((c.resources || {}).limits || {})['nvidia.com/gpu'] || 0) +
        Number(((c.resources || {}).requests || {})['nvidia.com/gpu'] || 0));
    const limit = Number((((w.container.resources || {}).limits) || {})['nvidia.com/gpu'] || 0);
    const wanted = EXPECTED_TRANSPORT[name];
    expect(!wanted || transport === wanted, `${w.where}: overlay ${name} must use --transport=${wanted}`);
    expect(spec.transport === 'auto' || spec.transport === transport,
      `job spec transport ${spec.transport} contradicts the workers' --transport=${transport}`);
    if (transport === 'nccl') {
      expect(limit >= 1 && gpu >= 0 && gpu < limit,
        `${w.where}: --transport=nccl needs an nvidia.com/gpu limit and --gpu below it`);
    } else if (transport === 'tcp') {
      expect(gpu === -1 && gpus.every((n) => n === 0),
        `${w.where}: --transport=tcp runs without GPUs: --gpu=-1 and no nvidia.com/gpu`);
    } else {
      expect(false, `${w.where}: set --transport (nccl or tcp)`);
    }
    const transportHelp = helps['mxport-worker'].split('\n').find((l) => /--transport\b/.test(l));
    if (transport && transportHelp && !transportHelp.includes(transport)) {
      notes.push(`mxport-worker --help does not list '${transport}' for --transport: ` +
        transportHelp.trim());
    }
  }
  return { errors, notes, checks };
}

function main(argv) {
  let binDir = 'build/bin';
  const overlays = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--bin-dir') binDir = argv[++i];
    else overlays.push(argv[i].split(/=(.*)/s).slice(0, 2));
  }
  if (overlays.length === 0 || overlays.some(([, file]) => !file)) {
    console.log('usage: check-manifests.js [--bin-dir DIR] NAME=RENDERED.yaml...');
    return 1;
  }
  const helps = readHelps(binDir);
  let failed = false;
  for (const [name, file] of overlays) {
    const { errors, notes, checks } = checkOverlay(name,
      parseDocuments(fs.readFileSync(file, 'utf8'), file), helps);
    notes.forEach((n) => console.log(`note ${name}: ${n}`));
    if (errors.length) {
      failed = true;
      console.log(`FAIL ${name}: ${errors.length} of ${checks} checks failed`);
      errors.forEach((e) => console.log(`  ${e}`));
    } else {
      console.log(`ok   ${name}: ${checks} checks of flags, ports, probes, env and job spec`);
    }
  }
  return failed ? 1 : 0;
}

if (require.main === module) process.exit(main(process.argv.slice(2)));
module.exports = { checkOverlay, readHelps, helpFlags, parseFlags };
