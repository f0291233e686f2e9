'use strict';
// Offline schema validation of Kubernetes objects, strict like `kubectl apply
// --validate=strict`: an unknown field is an error, and so is a wrong type, a bad enum value or
// a missing required field.
//
// Core kinds: the JSON schemas of the npm package kubernetes-models (types, enums, formats,
// required fields; they accept unknown fields), plus a walk over the TypeScript declarations of
// kubernetes-types that rejects every field the API type does not declare.
// JobSet (jobset.x-k8s.io/v1alpha2): Ajv with the CRD schema in schemas/, unknown fields
// rejected; the Job spec inside it is checked as a core batch/v1 JobSpec.
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');
const YAML = require('yaml');
const Ajv = require('ajv');

// apiVersion -> [kubernetes-models module, kubernetes-types module]
const CORE = {
  'v1': ['kubernetes-models/v1', 'core/v1'],
  'apps/v1': ['kubernetes-models/apps/v1', 'apps/v1'],
  'batch/v1': ['kubernetes-models/batch/v1', 'batch/v1'],
  'networking.k8s.io/v1': ['kubernetes-models/networking.k8s.io/v1', 'networking/v1'],
  'policy/v1': ['kubernetes-models/policy/v1', 'policy/v1'],
  'rbac.authorization.k8s.io/v1': ['kubernetes-models/rbac.authorization.k8s.io/v1', 'rbac/v1'],
};
const JOBSET_API = 'jobset.x-k8s.io/v1alpha2';
const JOBSET_SCHEMA = path.join(__dirname, '..', 'schemas', 'jobset.x-k8s.io_v1alpha2.yaml');

// "/spec/template/0/x" -> "spec.template[0].x"
function dotted(pointer) {
  return pointer.split('/').slice(1).reduce(
    (out, part) => (/^\d+$/.test(part) ? `${out}[${part}]` : out ? `${out}.${part}` : part), '');
}
const join = (base, field) => (base ? `${base}.${field}` : field);

// The declared fields of every kubernetes-types interface, read with the TypeScript checker.
class DeclaredFields {
  constructor() {
    const modules = [...new Set(Object.values(CORE).map((c) => c[1]).concat('meta/v1'))];
    const file = path.join(__dirname, 'k8s-types.virtual.ts');
    const source = modules.map((m, i) => `import type * as m${i} from "kubernetes-types/${m}";`)
      .join('\n');
    const options = { strict: true, noEmit: true, types: [], skipLibCheck: true,
      moduleResolution: ts.ModuleResolutionKind.Node10, module: ts.ModuleKind.CommonJS };
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile;
    host.getSourceFile = (name, language) => (name === file
      ? ts.createSourceFile(name, source, language) : getSourceFile(name, language));
    const fileExists = host.fileExists;
    host.fileExists = (name) => name === file || fileExists(name);
    const program = ts.createProgram([file], options, host);
    this.checker = program.getTypeChecker();
    this.modules = {};
    program.getSourceFile(file).statements.forEach((statement, i) => {
      const symbol = this.checker.getSymbolAtLocation(statement.moduleSpecifier);
      if (!symbol) throw new Error(`kubernetes-types/${modules[i]} not found: run npm ci`);
      this.modules[modules[i]] = symbol;
    });
  }

  type(module, name) {
    const symbol = this.modules[module] &&
      this.checker.getExportsOfModule(this.modules[module]).find((s) => s.name === name);
    return symbol ? this.checker.getDeclaredTypeOfSymbol(symbol) : null;
  }

  // Appends "path: unknown field" errors for every field of `value` that `type` lacks.
  unknown(value, type, where, errors) {
    if (value === null || typeof value !== 'object') return;
    const c = this.checker;
    type = c.getNonNullableType(type);
    if (type.isUnion()) {
      const objects = type.types.filter((t) => t.flags & ts.TypeFlags.Object);
      if (objects.length !== 1) return;  // e.g. IntOrString: the JSON schema checks scalars
      type = objects[0];
    }
    if (!(type.flags & ts.TypeFlags.Object)) return;
    if (Array.isArray(value)) {
      if (type.symbol && type.symbol.name === 'Array') {
        const [item] = c.getTypeArguments(type);
        value.forEach((v, i) => this.unknown(v, item, `${where}[${i}]`, errors));
      }
      return;
    }
    const index = c.getIndexTypeOfType(type, ts.IndexKind.String);
    const properties = c.getPropertiesOfType(type);
    if (!index && properties.length === 0) return;  // opaque (RawExtension, FieldsV1)
    for (const [key, v] of Object.entries(value)) {
      const property = type.getProperty(key);
      if (property) this.unknown(v, c.getTypeOfSymbol(property), join(where, key), errors);
      else if (index) this.unknown(v, index, `${where}[${JSON.stringify(key)}]`, errors);
      else errors.push(`${join(where, key)}: unknown field (not in ${c.typeToString(type)})`);
    }
  }
}

let declared = null;
function declaredFields() {
  if (!declared) declared = new DeclaredFields();
  return declared;
}

// Errors of a core object ([] when valid), each "field.path: message".
function validateCore(object) {
  const [modelsModule, typesModule] = CORE[object.apiVersion];
  const Model = require(modelsModule)[object.kind];
  const type = declaredFields().type(typesModule, object.kind);
  if (!Model || !type) return [`${object.apiVersion} ${object.kind}: no schema for this kind`];
  const errors = [];
  try {
    new Model(object).validate();
  } catch (e) {
    if (!e.errors) throw e;
    for (const err of e.errors) {
      errors.push(`${dotted(err.instancePath) || '(object)'}: ${err.message}` +
        (err.params && err.params.allowedValues ? ` ${JSON.stringify(err.params.allowedValues)}` : ''));
    }
  }
  declaredFields().unknown(object, type, '', errors);
  return [...new Set(errors)];
}

// x-mxport-schema targets: a core type checked by wrapping it in an object of a core kind.
const WRAPPERS = {
  'batch/v1.JobSpec': { apiVersion: 'batch/v1', kind: 'Job', field: 'spec' },
  'meta/v1.ObjectMeta': { apiVersion: 'v1', kind: 'ConfigMap', field: 'metadata' },
};

// The CRD's structural schema as a JSON Schema: objects with properties reject other fields
// (unless x-kubernetes-preserve-unknown-fields), int-or-string becomes anyOf.
function strictSchema(node) {
  if (Array.isArray(node)) return node.map(strictSchema);
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'description' || key === 'x-kubernetes-preserve-unknown-fields') continue;
    if (key === 'x-kubernetes-int-or-string') {
      out.anyOf = [{ type: 'integer' }, { type: 'string' }];
      continue;
    }
    out[key] = key === 'properties'
      ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, strictSchema(v)]))
      : strictSchema(value);
  }
  if (node.properties && node.additionalProperties === undefined &&
      !node['x-kubernetes-preserve-unknown-fields']) {
    out.additionalProperties = false;
  }
  return out;
}

function jobSetValidator() {
  const ajv = new Ajv({ allErrors: true, strict: true });
  ajv.addFormat('int32', { type: 'number',
    validate: (n) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: Number.isInteger });
  ajv.addVocabulary(['x-kubernetes-list-type', 'x-kubernetes-validations']);
  // List-map keys must be unique, as the API server enforces.
  ajv.addKeyword({
    keyword: 'x-kubernetes-list-map-keys', type: 'array', schemaType: 'array', errors: true,
    validate: function unique(keys, items, _parent, cxt) {
      const seen = new Set();
      unique.errors = [];
      for (const item of items) {
        const id = JSON.stringify(keys.map((k) => item && item[k]));
        if (seen.has(id)) {
          unique.errors.push({ instancePath: cxt.instancePath, keyword: 'x-kubernetes-list-map-keys',
            message: `duplicate entry with ${keys.join(', ')} = ${id}`, params: {} });
        }
        seen.add(id);
      }
      return unique.errors.length === 0;
    },
  });
  ajv.addKeyword({
    keyword: 'x-mxport-schema', schemaType: 'string', errors: true,
    validate: function core(target, data, _parent, cxt) {
      const wrap = WRAPPERS[target];
      const object = { apiVersion: wrap.apiVersion, kind: wrap.kind, [wrap.field]: data };
      core.errors = validateCore(object).map((message) => ({
        instancePath: cxt.instancePath, keyword: 'x-mxport-schema', params: {},
        message: message.startsWith(`${wrap.field}.`) ? message.slice(wrap.field.length + 1) : message,
      }));
      return core.errors.length === 0;
    },
  });
  return ajv.compile(strictSchema(YAML.parse(fs.readFileSync(JOBSET_SCHEMA, 'utf8'))));
}

let jobSet = null;
function validateJobSet(object) {
  if (!jobSet) jobSet = jobSetValidator();
  if (object.kind !== 'JobSet') return [`${object.apiVersion} ${object.kind}: no schema for this kind`];
  if (jobSet(object)) return [];
  return jobSet.errors.map((err) => {
    const where = dotted(err.instancePath);
    if (err.keyword === 'additionalProperties') {
      return `${join(where, err.params.additionalProperty)}: unknown field`;
    }
    if (err.keyword === 'x-mxport-schema') return `${where}.${err.message}`;
    const allowed = err.params.allowedValues ? ` ${JSON.stringify(err.params.allowedValues)}` : '';
    return `${where || '(object)'}: ${err.message}${allowed}`;
  });
}

// Errors of one object of any supported kind ([] when valid).
function validateObject(object) {
  if (object === null || typeof object !== 'object' || Array.isArray(object)) {
    return ['(document): not a mapping'];
  }
  const errors = [];
  if (!object.metadata || typeof object.metadata.name !== 'string' || !object.metadata.name) {
    errors.push('metadata.name: required');
  }
  if (CORE[object.apiVersion]) return errors.concat(validateCore(object));
  if (object.apiVersion === JOBSET_API) return errors.concat(validateJobSet(object));
  return errors.concat(`${object.apiVersion} ${object.kind}: no schema for this apiVersion`);
}

// Parses a multi-document YAML text; throws on a syntax error or a duplicate key.
function parseDocuments(text, name) {
  const objects = [];
  for (const doc of YAML.parseAllDocuments(text, { uniqueKeys: true })) {
    if (doc.errors.length) throw new Error(`${name}: ${doc.errors[0].message}`);
    const value = doc.toJSON();
    if (value !== null) objects.push(value);
  }
  return objects;
}

const describe = (o) => `${o && o.kind}/${o && o.metadata && o.metadata.name}`;

module.exports = { validateObject, parseDocuments, describe };
