// The routing table lives in a leaf (src/sni-routes.ts), which config/ may import.
export * from '../../sni-routes.js';
