/** The release version every program prints for --version (kept equal to package.json's; test/cli-startup.test.ts checks). */
export const CLONER_VERSION = '0.1.0';
