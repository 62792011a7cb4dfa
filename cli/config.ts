/** `tau config generate`: a node's config and keys under --root (see services/config/generate.ts). */
import type { Command } from "commander";
import { generateShapeConfig } from "../services/config/generate.ts";
import { TauError } from "../runtime/errors.ts";

function port(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new TauError(`${what} ${value} is not a port`, { hint: "use 1-65535" });
  }
  return n;
}

export function registerConfigCommands(program: Command): void {
  const config = program.command("config").description("a node's configuration");
  config.command("generate")
    .alias("gen")
    .description(
      "write a node's config (<root>/config/<shape>.yaml) and keys (<root>/keys/); prints its multiaddr last",
    )
    .requiredOption("--root <dir>", "the node's folder")
    .requiredOption("--cloud <name>", "the cloud's name (its domain, e.g. example.com)")
    .requiredOption("--shape <name>", "the node's shape (its config file's name)")
    .requiredOption("--ip <ip>", "the address this node listens on and is reached at")
    .option(
      "--services <list>",
      "all, or a comma list of auth,tns,patrick,monkey,hoarder,seer,substrate,gateway",
      "all",
    )
    .option("--http <port>", "HTTP port (gateway, API, git)", "80")
    .option("--p2p <port>", "libp2p port", "4242")
    .option("--dns <port>", "DNS port (seer)", "53")
    .option("--bootstrap <multiaddr>", "a node to join (repeatable)", (v: string, acc: string[]) => [...acc, v], [])
    .option("--swarm-key <file>", "the cloud's swarm key (from its first node's keys/swarm.key)")
    .option("--new-swarm-key", "start a new private cloud: write keys/swarm.key")
    .option("--dv", "domain validation: custom domains need a TXT record signed with the cloud's DV key")
    .action(async (o: {
      root: string;
      cloud: string;
      shape: string;
      ip: string;
      services: string;
      http: string;
      p2p: string;
      dns: string;
      bootstrap: string[];
      swarmKey?: string;
      newSwarmKey?: boolean;
      dv?: boolean;
    }) => {
      const g = await generateShapeConfig({
        root: o.root,
        cloud: o.cloud,
        shape: o.shape,
        ip: o.ip,
        services: o.services,
        http: port(o.http, "--http"),
        p2p: port(o.p2p, "--p2p"),
        dns: port(o.dns, "--dns"),
        bootstrap: o.bootstrap,
        swarmKeyFile: o.swarmKey,
        newSwarmKey: o.newSwarmKey,
        dv: o.dv,
      });
      console.log(`config: ${g.file}`);
      if (g.swarmKeyFile) console.log(`swarm key: ${g.swarmKeyFile} (give it to every other node: --swarm-key FILE)`);
      console.log(`admin token: ${g.adminTokenFile}`);
      console.log(`peer id: ${g.peerId}`);
      console.log(g.multiaddr);
    });
}
