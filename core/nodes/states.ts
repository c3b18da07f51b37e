/**
 * The fixed vocabularies of nodes (power actions, netboot states), in a module that imports
 * nothing: the protocol's schemas and the CLI's flag help use them, and loading them must
 * not load the registry or the BMC code (node:https alone costs a CLI start ~30 ms of CPU
 * through its ES module wrapper; bench/startup.ts).
 */
export type PowerAction = 'on' | 'off' | 'reset' | 'status';
export const POWER_ACTIONS: readonly PowerAction[] = ['on', 'off', 'reset', 'status'];

export type Netboot = 'local' | 'cloner' | 'cloner-multicast';
export const NETBOOT_STATES: readonly Netboot[] = ['local', 'cloner', 'cloner-multicast'];
