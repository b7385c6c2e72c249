// The storage seam. One repository per aggregate; services, jobs, SMTP doors and routes receive
// them as dependencies and never touch mongoose or a model. The engine-specific tricks (claims as
// referee on FerretDB, `_id`-first filters, due queues) live inside the repositories.
import { createApiKeysRepository } from './api-keys.repository.ts';
import { createBrandRepository } from './brand.repository.ts';
import { createChallengesRepository } from './challenges.repository.ts';
import { createCardVaultRepository } from './card-vault.repository.ts';
import { createClaimsRepository } from './claims.repository.ts';
import { createCustomersRepository } from './customers.repository.ts';
import { createInboundRepository } from './inbound.repository.ts';
import { createLimitsRepository } from './limits.repository.ts';
import { createMerchantsRepository } from './merchants.repository.ts';
import { createOrderClosesRepository } from './order-closes.repository.ts';
import { createOrdersRepository } from './orders.repository.ts';
import { createOutboxRepository } from './outbox.repository.ts';
import { createRecapsRepository } from './recaps.repository.ts';
import { createRefundsRepository } from './refunds.repository.ts';
import { createRetentionRepository } from './retention.ts';
import { createUsersRepository } from './users.repository.ts';
import { createWebhooksRepository } from './webhooks.repository.ts';

export function createRepositories() {
  return {
    orders: createOrdersRepository(),
    /** How each order closes (paid, expired, cancelled) and its first view, decided once: the transitions' journal. */
    closes: createOrderClosesRepository(),
    refunds: createRefundsRepository(),
    challenges: createChallengesRepository(),
    merchants: createMerchantsRepository(),
    /** The merchant's accent colour and logo. */
    brand: createBrandRepository(),
    users: createUsersRepository(),
    limits: createLimitsRepository(),
    inbound: createInboundRepository(),
    outbox: createOutboxRepository(),
    webhooks: createWebhooksRepository(),
    recaps: createRecapsRepository(),
    claims: createClaimsRepository(),
    /** Customers and their saved cards (token, brand, last four, expiry, acquirer: never the card). */
    customers: createCustomersRepository(),
    /** The sandbox acquirer's own card vault (what its bank would keep; never a card number). */
    cardVault: createCardVaultRepository(),
    /** The server API: keys (hashes only), Idempotency-Key records, the per-key rate limit. */
    apiKeys: createApiKeysRepository(),
    /** Pruning of what only matters for a while (src/jobs/retention.job.ts). */
    retention: createRetentionRepository(),
  };
}

export type Repositories = ReturnType<typeof createRepositories>;
