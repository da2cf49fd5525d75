import Foundation
import Logging
import NIOPosix
import RoasCore
import RoasScaleOut

extension Ingestor {
    /// `roas serve --nats --follow`: applies what the stream holds to this server's engine, as
    /// `roas worker` does, so that the dashboard, `/v1/roas`, `/v1/stream`, `--output` and the
    /// summary show the rows of the cluster. Run by `EngineService` beside the ticks; returns when
    /// the follower ends (`finish()` ends it once the edge's last appends are read back).
    nonisolated func followStream() async {
        guard let follower = self.settings.follower else { return }
        var failure: (any Error)?
        following: while true {
            let item: LogFollower.Item
            do {
                item = try await NIOThreadPool.singleton.runIfActive { follower.take() }
            } catch {
                failure = error
                break
            }
            switch item {
            case .chunk(let chunk):
                await self.applyFollowed(chunk)
            case .advance(let time):
                await self.advanceFollowed(to: time)
            case .checkpoint:
                continue
            case .end:
                break following
            case .failure(let error):
                failure = error
                break following
            }
        }
        await self.endFollowing(failure)
    }

    private func applyFollowed(_ chunk: ParsedChunk) {
        do {
            try self.host.apply(chunk, updatesAfterClosedWindows: true)
        } catch {
            Logger(label: "roas").error("cannot write the rows of the followed stream: \(error)")
        }
    }

    private func advanceFollowed(to time: Int64) {
        do {
            try self.host.advanceIdle(to: time)
        } catch {
            Logger(label: "roas").error("cannot write the rows of the followed stream: \(error)")
        }
    }

    private func endFollowing(_ failure: (any Error)?) {
        if let failure {
            Logger(label: "roas").error(
                "stopped following the stream: the dashboard and rows no longer change", metadata: ["error": "\(failure)"])
        }
        self.followEnded = true
        for waiter in self.followWaiters { waiter.resume() }
        self.followWaiters.removeAll()
    }

    /// At shutdown, with `--follow`: waits until the edge has appended what it took, then until the
    /// follower has read the stream to its end and applied it.
    func finishFollowing() async {
        guard let follower = self.settings.follower, !self.followEnded else { return }
        if let edge = self.settings.edge {
            try? await NIOThreadPool.singleton.runIfActive { edge.waitDrained() }
        }
        follower.finish()
        if self.followEnded { return }
        await withCheckedContinuation { self.followWaiters.append($0) }
    }
}
