// The connections' thread pool (thread_pool.hpp).
#include "thread_pool.hpp"

#include <pthread.h>

#include <utility>

namespace engine {

constexpr std::chrono::milliseconds ThreadPool::kIdleExit;

void ThreadPool::start() {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = false;
    if (members_.empty()) spawn(true);
}

void ThreadPool::spawn(bool resident) {
    members_.emplace_back();
    Member* member = &members_.back();
    member->thread = std::thread([this, member, resident] { loop(member, resident); });
    // Named before spawn() returns, so that whoever counts the threads sees the name.
    pthread_setname_np(member->thread.native_handle(), kThreadName);
}

void ThreadPool::run(std::function<void()> task) {
    join_finished();
    std::lock_guard<std::mutex> lock(mutex_);
    tasks_.push_back(std::move(task));
    if (idle_ >= tasks_.size()) {
        work_.notify_one();
    } else {
        spawn(false);
    }
}

void ThreadPool::loop(Member* self, bool resident) {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
        ++idle_;
        const bool woken = resident
            ? (work_.wait(lock, [this] { return stopping_ || !tasks_.empty(); }), true)
            : work_.wait_for(lock, kIdleExit, [this] { return stopping_ || !tasks_.empty(); });
        --idle_;
        if (tasks_.empty() && (!woken || stopping_)) break;  // idle too long, or stop()
        auto task = std::move(tasks_.front());
        tasks_.pop_front();
        lock.unlock();
        task();
        task = nullptr;  // what it holds is dropped on this thread, before the next wait
        lock.lock();
    }
    self->finished = true;
}

void ThreadPool::join_finished() {
    std::list<Member> finished;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto it = members_.begin(); it != members_.end();) {
            auto next = std::next(it);
            if (it->finished) finished.splice(finished.end(), members_, it);
            it = next;
        }
    }
    for (auto& member : finished) member.thread.join();
}

void ThreadPool::stop() {
    std::list<Member> all;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        all.swap(members_);
    }
    work_.notify_all();
    for (auto& member : all) member.thread.join();
}

}  // namespace engine
