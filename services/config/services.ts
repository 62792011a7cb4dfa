/** What a node can run; a shape enables a subset. (Its own module: `tau dev` reads it without loading libp2p.) */
export const SERVICES = ["auth", "tns", "patrick", "monkey", "hoarder", "seer", "substrate", "gateway"] as const;
export type ServiceName = typeof SERVICES[number];
