// Package console serves read-only web pages for operators and privacy reviewers: a decision
// log, verified against its checkpoint key before anything in it is shown, with its decisions
// and changes of standing filtered by session, user, outcome or event; the SIEM spool's backlog
// per collector; and, for privacy reviewers, privacy ledgers: budget, epsilon spent, and every
// round with its parameters, the signed privacy report to download, and accuracy against
// epsilon (vigil privacy tradeoff --json) plotted as server-drawn SVG beside the ledgers'
// epsilon. Given a coordinator's status (Admin API or state directory), it also shows rounds
// (with the time of each stage), trustees, releases per region (checked as devices check them)
// with the versions the fleet reports running, and devices: the registry, never behavioural
// data, so not even the devices' shadow-scoring results, which stay on the devices. Given key-epoch documents and the root of trust, it shows each
// key epoch with every signature checked on its own against the root's trustees role.
//
// Pages are rendered on the server with html/template, with no JavaScript and no third-party
// assets, under a Content-Security-Policy that allows only the console's own stylesheet. The
// handler answers GET and HEAD only. It does no authentication itself: the binary (vigil
// console) serves it behind mutual TLS, so only holders of a client certificate from the
// operators' CA reach it.
package console
