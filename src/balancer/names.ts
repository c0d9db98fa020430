// The names live in a leaf (src/strategy-names.ts), which config/ may import.
export * from '../strategy-names.js';
