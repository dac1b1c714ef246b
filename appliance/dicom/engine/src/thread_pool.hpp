// The connections' threads: one resident thread that lives from start() to stop(), and extra
// threads made when every thread is busy, each leaving after a while without work. A
// connection therefore never waits for a thread (the engine's own limits bound how many run at
// once), and associations that come one after another are served on the same thread: no
// thread made per connection, and its Python thread state (module.cpp) made once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

namespace engine {

class ThreadPool {
public:
    //! Extra threads leave after this long without a task.
    static constexpr std::chrono::milliseconds kIdleExit{100};
    //! Every connection thread's name (at most 15 characters), as top -H and ps -L show it.
    static constexpr const char* kThreadName = "dicom-conn";

    ThreadPool() = default;
    ~ThreadPool() { stop(); }
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    //! Start the resident thread (again after stop()).
    void start();
    //! Run `task` on an idle thread, or on a new one when none is idle.
    void run(std::function<void()> task);
    //! Let every thread finish its task, then join them all (none is left).
    void stop();

private:
    struct Member {
        std::thread thread;
        bool finished = false;  //!< its loop returned: joinable without waiting
    };
    void loop(Member* self, bool resident);
    void spawn(bool resident);  //!< with mutex_ held
    void join_finished();       //!< joins members whose loop returned

    std::mutex mutex_;
    std::condition_variable work_;
    std::deque<std::function<void()>> tasks_;
    std::list<Member> members_;
    std::size_t idle_ = 0;
    bool stopping_ = false;
};

}  // namespace engine
