/** Entry point of a cluster worker process (see ClusterPrimary). */
import { ClusterWorker } from './worker.js';

new ClusterWorker().attach();
