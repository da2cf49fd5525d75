import Foundation
import RoasCore
import RoasRuntime

/// Where `--alert-webhook` posts: an `http` or `https` URL, parsed once at start.
public struct AlertWebhookURL: Sendable, Equatable, CustomStringConvertible {
    public var isTLS: Bool
    /// The host name or IP address (an IPv6 address without its brackets).
    public var host: String
    public var port: Int
    /// The request target: the URL's path and query, percent-encoded as given ("/" when empty).
    public var target: String

    /// Parses `http[s]://HOST[:PORT][/PATH][?QUERY]`; nil for another scheme, no host, a bad port or
    /// user information (the signature authenticates roas; credentials do not belong in the URL).
    public init?(_ text: String) {
        guard let components = URLComponents(string: text.trimmingCharacters(in: .whitespaces)),
            let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            components.user == nil, components.password == nil,
            var host = components.host, !host.isEmpty
        else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" }) else { return nil }
        self.isTLS = scheme == "https"
        let port = components.port ?? (self.isTLS ? 443 : 80)
        guard (1...65535).contains(port) else { return nil }
        self.host = host
        self.port = port
        var target = components.percentEncodedPath
        if target.isEmpty { target = "/" }
        if let query = components.percentEncodedQuery { target += "?" + query }
        self.target = target
    }

    /// The `Host` header: the host, and the port when it is not the scheme's default.
    public var hostHeader: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return self.port == (self.isTLS ? 443 : 80) ? host : "\(host):\(self.port)"
    }

    /// For logs: scheme, host, port and path, without the query (it may hold a token).
    public var description: String {
        let path = self.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? "/"
        return "\(self.isTLS ? "https" : "http")://\(self.hostHeader)\(path)"
    }
}

/// When a failed delivery is tried again, and what an answer means.
public struct AlertRetryPolicy: Sendable, Equatable {
    /// Milliseconds before the first retry; each further one waits twice as long, up to `cap`.
    public var base: Int64 = 1000
    /// The longest wait between two attempts, in milliseconds (5 minutes).
    public var cap: Int64 = 300_000
    /// Milliseconds after it was queued beyond which an undelivered alert is dropped (an hour).
    public var giveUpAfter: Int64 = 3_600_000
    /// Each wait is shortened by up to this fraction at random, so that senders restarted together
    /// do not retry in step.
    public var jitter = 0.2

    public init() {}

    /// Milliseconds to wait after `failures` consecutive failed attempts (1 for the first), with
    /// `random` in 0..<1 choosing the jitter: `base × 2^(failures-1)`, at most `cap`, less up to
    /// `jitter` of it.
    public func delay(afterFailures failures: Int, random: Double) -> Int64 {
        let doublings = max(0, min(failures - 1, 62))
        var nominal = self.cap
        if doublings < 62 {
            let (scaled, overflow) = self.base.multipliedReportingOverflow(by: Int64(1) << doublings)
            if !overflow { nominal = min(self.cap, scaled) }
        }
        let shortened = Double(nominal) * self.jitter * min(max(random, 0), 1)
        return max(0, nominal - Int64(shortened))
    }

    /// What an HTTP answer means for a delivery.
    public enum Verdict: Sendable, Equatable {
        /// 2xx: the receiver has it.
        case delivered
        /// 408, 429 and 5xx (and anything else unexpected but 3xx/4xx): try again later.
        case retry
        /// 3xx and 4xx other than 408 and 429: the receiver refuses this request; it is not retried.
        case reject
    }

    public static func verdict(status: Int) -> Verdict {
        switch status {
        case 200..<300: .delivered
        case 408, 429: .retry
        case 300..<500: .reject
        default: .retry
        }
    }
}

/// `roas serve --alert-webhook URL --alert-secret whsec_...`: each alert, firing and resolved, is
/// POSTed to the URL signed with Standard Webhooks, retried with backoff (see AlertWebhookService).
public struct AlertWebhookSettings: Sendable {
    public var url: AlertWebhookURL
    public var secret: WebhookSecret
    /// Milliseconds one attempt may take, from connecting to the end of the answer (`--alert-timeout`).
    public var timeout: Int64 = 10_000
    public var retry = AlertRetryPolicy()
    /// Alerts that may wait for delivery; beyond it the oldest is dropped (`--alert-queue`).
    public var queueLimit = 100_000
    /// Milliseconds a graceful shutdown without a data folder waits for the queue to empty (its
    /// alerts are lost otherwise).
    public var shutdownGrace: Int64 = 5_000

    public init(url: AlertWebhookURL, secret: WebhookSecret) {
        self.url = url
        self.secret = secret
    }
}
