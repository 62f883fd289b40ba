//! Integration tests of the egress engine: the policy decides, only checked
//! loopback addresses are ever dialled, budgets and timeouts hold against
//! hostile servers, and every request leaves a record.

mod corpus;
mod dns;
mod live;
mod properties;
mod sender;
mod tls;
