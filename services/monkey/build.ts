/**
 * monkey: builds one project at the heads of its config and code repos and publishes the result to TNS.
 * Config is parsed and validated first (fail fast, nothing stored); every output is content-addressed in Helia;
 * only a fully built deployment reaches TNS, in one pointer flip. A failed build changes nothing that is live.
 */
import { databaseBindingsOf, storageBindingsOf } from "../data/records.ts";
import { TauError } from "../../runtime/errors.ts";
import { listFiles, listHeads, readTree } from "../../runtime/git/git.ts";
import type { ContentStore } from "../../runtime/storage/helia.ts";
import { assertValid, formatIssue, type ProjectConfig, routesOf } from "../../runtime/schema/mod.ts";
import { configSizeIssues } from "../../runtime/schema/limits.ts";
import { ConfigParser } from "../../runtime/schema/off_thread.ts";
import type { FunctionResource, SmartopsResource, WebsiteResource } from "../../runtime/schema/mod.ts";
import type { GitHosting } from "../git/hosting.ts";
import { SERVED_BRANCH } from "../tns/tns.ts";
import type { Job, JobLog } from "../patrick/jobs.ts";
import type {
  ContainerDeployment,
  DeploymentRecord,
  DeploymentRef,
  EventTrigger,
  FunctionDeployment,
  SmartopDeployment,
  WebsiteDeployment,
} from "../tns/records.ts";
import { containerKey } from "../substrate/spec.ts";
import type { ImageRecord } from "../../runtime/container/images/store.ts";
import { buildFunctionModule, withNodeLimits } from "./functions.ts";
import type { ModuleBuilder } from "../../runtime/wasm/builder.ts";

type Files = Record<string, Uint8Array>;

export type Publish = (record: DeploymentRecord, log: JobLog) => Promise<DeploymentRef>;

/** Resolves an image reference to the image a deployment pins (substrate's ContainerHost.resolveImage). */
export type ImageResolver = (ref: string, log: JobLog) => Promise<ImageRecord>;

export class Monkey {
  #git: GitHosting;
  #store: ContentStore;
  #publish: Publish;
  #kv: Deno.Kv;
  #builder: ModuleBuilder;
  #images: ImageResolver;
  #parser = new ConfigParser();

  constructor(
    deps: {
      git: GitHosting;
      store: ContentStore;
      /** The rollout's publish: prepare, flip, release (services/rollout). */
      publish: Publish;
      kv: Deno.Kv;
      builder: ModuleBuilder;
      images: ImageResolver;
    },
  ) {
    this.#git = deps.git;
    this.#store = deps.store;
    this.#publish = deps.publish;
    this.#kv = deps.kv;
    this.#builder = deps.builder;
    this.#images = deps.images;
  }

  close(): void {
    this.#parser.close();
  }

  build = async (job: Job, log: JobLog): Promise<{ id: string; cid: string }> => {
    const t0 = performance.now();
    const configRepo = this.#git.repoPath(job.project, "config");
    const codeRepo = this.#git.repoPath(job.project, "code");
    const [configHeads, codeHeads] = await Promise.all([listHeads(configRepo), listHeads(codeRepo)]);
    const configCommit = configHeads.get(job.branch);
    if (!configCommit) {
      throw new TauError(`the config repo has no branch ${job.branch}`, {
        hint: `push the config repo's ${job.branch} branch too`,
      });
    }
    const codeCommit = codeHeads.get(job.branch);
    log(`config ${configCommit.slice(0, 12)}, code ${codeCommit?.slice(0, 12) ?? "(none)"}`);
    // Repos brought from Taubyte (or any older host) often have master and no main: master is then what is served.
    const branch = job.branch === "master" && !configHeads.has(SERVED_BRANCH) ? SERVED_BRANCH : job.branch;
    if (branch !== job.branch) log("branch master is served as main (the config repo has no main branch)");

    const config = assertValid(await this.#parser.parse(await readConfigYaml(configRepo, configCommit)));
    log(
      `config valid: ${config.functions.length} function(s), ${config.websites.length} website(s), ` +
        `${config.domains.length} domain(s)` +
        (config.containers.length ? `, ${config.containers.length} container(s)` : "") +
        (config.smartops.length ? `, ${config.smartops.length} smartop(s)` : ""),
    );
    for (const w of config.warnings) log(`warning: ${formatIssue(w)}`);
    const code: Files = codeCommit ? await readTree(codeRepo, codeCommit) : {};

    /** A function's or smartop's module (limits clamped to the node's), built or taken from the cache. */
    const moduleOf = async <T extends FunctionResource | SmartopsResource>(
      declared: T,
      kind: "function" | "smartop",
    ) => {
      const started = performance.now();
      const r = withNodeLimits(declared, log, kind);
      const folder = codeFolder(config, r, kind === "function" ? "functions" : "smartops", code);
      const built = await buildFunctionModule(r, subtree(code, folder), folder, this.#store, this.#kv, this.#builder);
      log(`${kind} ${label(r)}: ${built.cid} (${built.cached ? "unchanged, reused" : "built"} in ${ms(started)})`);
      return { r, cid: built.cid };
    };
    const smartops: SmartopDeployment[] = [];
    for (const declared of config.smartops) {
      const { r: op, cid } = await moduleOf(declared, "smartop");
      smartops.push({
        name: op.name,
        ...(op.app ? { app: op.app } : {}),
        id: op.id,
        cid,
        call: op.execution.call,
        timeoutMs: op.execution.timeoutMs,
        memoryBytes: op.execution.memoryBytes,
      });
    }
    const guards = (r: { app?: string; tags: string[] }) => smartopsOf(r, smartops);
    const functions: FunctionDeployment[] = [];
    for (const declared of config.functions) {
      const { r: fn, cid } = await moduleOf(declared, "function");
      functions.push({
        name: fn.name,
        app: fn.app,
        id: fn.id,
        cid,
        call: fn.execution.call,
        timeoutMs: fn.execution.timeoutMs,
        memoryBytes: fn.execution.memoryBytes,
        bodyBytes: fn.execution.bodyBytes,
        ...(fn.outbound.allow.length ? { outbound: fn.outbound.allow } : {}),
        routes: [],
        ...eventTriggerOf(fn),
        ...guards(declared),
        ...(fn.secrets.length ? { secrets: fn.secrets } : {}),
      });
    }
    const websites: WebsiteDeployment[] = [];
    for (const site of config.websites) {
      const started = performance.now();
      const { files, folder } = websiteFiles(site, code);
      const root = await this.#store.addTree(files);
      log(`website ${label(site)}: ${root} (${Object.keys(files).length} files from ${folder}/ in ${ms(started)})`);
      websites.push({ name: site.name, app: site.app, id: site.id, root, spa: site.spa, routes: [], ...guards(site) });
    }
    const containers: ContainerDeployment[] = [];
    for (const c of config.containers) {
      const image = await this.#images(c.image, log);
      const values = {
        name: c.name,
        app: c.app,
        image: c.image,
        imageId: image.id,
        port: c.port,
        command: c.command,
        env: c.env,
        limits: c.limits,
        replicas: c.replicas,
        workdir: c.workdir,
        hostname: c.hostname,
        readiness: c.readiness,
      };
      const key = await containerKey(job.project, values);
      log(`container ${label(c)}: ${c.image} = ${image.id.slice(7, 19)}, ${c.replicas} replica(s), key ${key}`);
      containers.push({ ...values, id: c.id, key, routes: [], ...guards(c) });
    }
    for (const route of routesOf(config)) {
      if (route.kind === "container") {
        containers.find((c) => label(c) === route.resource)?.routes.push({ fqdn: route.fqdn, path: route.path });
      } else if (route.kind === "function") {
        functions.find((f) => label(f) === route.resource)?.routes.push({
          fqdn: route.fqdn,
          method: route.method,
          path: route.path,
        });
      } else {
        websites.find((w) => label(w) === route.resource)?.routes.push({ fqdn: route.fqdn, path: route.path });
      }
    }

    const record: DeploymentRecord = {
      project: job.project,
      branch,
      commit: job.commit,
      configCommit,
      codeCommit,
      jobId: job.id,
      createdAt: new Date().toISOString(),
      functions,
      websites,
      containers,
      databases: databaseBindingsOf(config),
      storages: storageBindingsOf(config),
      ...(smartops.length ? { smartops } : {}),
      messaging: config.messaging.map((m) => ({
        name: m.name,
        ...(m.app ? { app: m.app } : {}),
        id: m.id,
        match: m.match,
        regex: m.regex,
        local: m.local,
        websocket: m.websocket,
        mqtt: m.mqtt,
      })),
      services: config.services.map((v) => ({
        name: v.name,
        ...(v.app ? { app: v.app } : {}),
        id: v.id,
        protocol: v.protocol,
      })),
    };
    const ref = await this.#publish(record, log);
    log(`published in ${ms(t0)}: ${ref.fqdns.join(", ") || "(no domains)"}`);
    return { id: ref.id, cid: ref.cid };
  };
}

/** A function's trigger as its record keeps it, when it is not an HTTP one. */
function eventTriggerOf(fn: FunctionResource): { trigger?: EventTrigger } {
  const t = fn.trigger;
  if (t.type === "pubsub") return { trigger: { type: "pubsub", channel: t.channel!, local: t.local } };
  if (t.type === "p2p") {
    return { trigger: { type: "p2p", protocol: t.protocol!, command: t.command!, local: t.local } };
  }
  if (t.type === "cron") return { trigger: { type: "cron", schedule: t.schedule!, catchup: t.catchup ?? false } };
  return {};
}

/** The config repo's YAML (what the schema reads), after checking its sizes without reading it. */
async function readConfigYaml(repo: string, commit: string): Promise<Record<string, string>> {
  const yaml = (await listFiles(repo, commit)).filter((f) => f.path.endsWith(".yaml"));
  const tooBig = configSizeIssues(yaml);
  if (tooBig.length) assertValid({ issues: tooBig });
  if (!yaml.length) return {};
  const texts: Record<string, string> = {};
  const dec = new TextDecoder();
  for (const [path, bytes] of Object.entries(await readTree(repo, commit, ["*.yaml"]))) {
    texts[path] = dec.decode(bytes);
  }
  return texts;
}

function label(r: { name: string; app?: string }): string {
  return r.app ? `${r.app}/${r.name}` : r.name;
}

function ms(since: number): string {
  return `${Math.round(performance.now() - since)} ms`;
}

/** Files under `folder/`, keyed by their path inside it. */
function subtree(code: Files, folder: string): Files {
  const prefix = folder.replace(/\/+$/, "") + "/";
  const out: Files = {};
  for (const [path, bytes] of Object.entries(code)) {
    if (path.startsWith(prefix)) out[path.slice(prefix.length)] = bytes;
  }
  return out;
}

function hasFolder(code: Files, folder: string): boolean {
  const prefix = folder + "/";
  return Object.keys(code).some((p) => p.startsWith(prefix));
}

/** The code folder of a function or smartop: its own folder (`functions/<name>`), or the library it names. */
function codeFolder(
  config: ProjectConfig,
  r: { name: string; app?: string; source: string },
  kindFolder: "functions" | "smartops",
  code: Files,
): string {
  if (r.source === "." || r.source === "") {
    return r.app ? `applications/${r.app}/${kindFolder}/${r.name}` : `${kindFolder}/${r.name}`;
  }
  // `libraries/<lib>`: an app-scoped resource sees its application's library first, like domain references.
  const lib = r.source.replace(/^libraries\//, "");
  const appFolder = r.app ? `applications/${r.app}/libraries/${lib}` : undefined;
  if (appFolder && config.libraries.some((l) => l.app === r.app && l.name === lib) && hasFolder(code, appFolder)) {
    return appFolder;
  }
  return `libraries/${lib}`;
}

/**
 * The smartops a resource's `smartops:<name>` tags attach, as labels, in tag order. A name resolves in the
 * resource's application first, then at the project level (the schema checked that one exists).
 */
function smartopsOf(r: { app?: string; tags: string[] }, built: SmartopDeployment[]): { smartops?: string[] } {
  const names = r.tags.filter((t) => t.startsWith("smartops:")).map((t) => t.slice("smartops:".length));
  const labels = names.map((name) => {
    const op = built.find((s) => s.name === name && s.app === r.app && r.app) ??
      built.find((s) => s.name === name && !s.app);
    return op ? label(op) : undefined;
  }).filter((l): l is string => l !== undefined);
  return labels.length ? { smartops: [...new Set(labels)] } : {};
}

function websiteFiles(site: WebsiteResource, code: Files): { files: Files; folder: string } {
  let folder = site.source === "." || site.source === ""
    ? (site.app ? `applications/${site.app}/websites/${site.name}` : `websites/${site.name}`)
    : site.source.replace(/\/+$/, "");
  if (site.build) folder = `${folder}/${site.build.replace(/^\.?\/+|\/+$/g, "")}`;
  else if (hasFolder(code, `${folder}/build`)) folder = `${folder}/build`;
  const files = subtree(code, folder);
  if (Object.keys(files).length === 0) {
    throw new TauError(`website ${label(site)} has no files: expected ${folder}/ in the code repo`, {
      hint: `add ${folder}/index.html to the code repo and push it`,
    });
  }
  return { files, folder };
}
